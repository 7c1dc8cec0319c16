fn handle(headers: &[(String, String)], cfg: &Config) -> Result<u32, Error> {
    #[allow(unused_mut)]
    let mut __apm_tx = ::apm_runtime::Transaction::builder("GET /users")
        .with_type("request")
        .continue_from(&(headers))
        .start();
    if ::apm_runtime::__private::records(&__apm_tx) {
        #[allow(unused_imports)]
        use ::apm_runtime::__private::{
            LabelViaNative as _, LabelViaDisplay as _, LabelViaDebug as _,
        };
        ::apm_runtime::__private::label(
            &mut __apm_tx,
            "region",
            (&&&::apm_runtime::__private::LabelOf(&(cfg.region))).__apm_label_value(),
        );
    }
    let __apm_guard = __apm_tx.attach();
    let __apm_out = ::apm_runtime::__private::run::<
        Result<u32, Error>,
        _,
    >(move || {
        let n = parse(headers)?;
        if n == 0 {
            return Ok(1);
        }
        Ok(n)
    });
    match &__apm_out {
        ::core::result::Result::Ok(_) => {
            ::apm_runtime::__private::record_ok(&mut __apm_tx)
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
                &mut __apm_tx,
                __apm_err,
                __apm_details,
            );
        }
    }
    __apm_out
}
