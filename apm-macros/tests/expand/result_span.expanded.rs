fn parse(s: &str) -> Result<u32, std::num::ParseIntError> {
    ::apm_runtime::__private::in_span::<
        Result<u32, std::num::ParseIntError>,
        _,
        _,
        _,
    >(
        || ::apm_runtime::Span::builder("parse"),
        move |_| {
            {
                let v: u32 = s.trim().parse()?;
                Ok(v)
            }
        },
        |mut __apm_span, __apm_out| match &__apm_out {
            ::core::result::Result::Ok(_) => {
                ::apm_runtime::__private::record_ok(&mut __apm_span)
            }
            ::core::result::Result::Err(__apm_err) => {
                #[allow(unused_imports)]
                use ::apm_runtime::__private::{
                    ErrViaError as _, ErrViaSendView as _, ErrViaView as _,
                    ErrViaDisplay as _, ErrViaDebug as _, ErrViaTypeName as _,
                };
                let __apm_details = (&&&&&&::apm_runtime::__private::ErrMsg(__apm_err))
                    .__apm_error_details();
                ::apm_runtime::__private::record_err(
                    &mut __apm_span,
                    __apm_err,
                    __apm_details,
                );
            }
        },
    )
}
