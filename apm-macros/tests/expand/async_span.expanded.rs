fn fetch<'__apm_life0>(
    url: &'__apm_life0 str,
) -> impl ::core::future::Future<
    Output = Result<String, reqwest::Error>,
> + ::apm_runtime::__private::Captures<(&'__apm_life0 (),)> {
    let __apm_parent = ::apm_runtime::Context::current();
    async move {
        let url = url;
        #[allow(unused_mut)]
        let mut __apm_span = ::apm_runtime::Span::builder("fetch")
            .child_of(&__apm_parent)
            .start();
        let __apm_fut = ::apm_runtime::__private::typed_future::<
            Result<String, reqwest::Error>,
            _,
        >(async move {
            {
                let __apm_ret: Result<String, reqwest::Error> = {
                    let handle = tokio::spawn(
                        ::apm_runtime::Context::current()
                            .wrap_future(async move { get(url).await }),
                    );
                    handle.await.unwrap()
                };
                #[allow(unreachable_code)] __apm_ret
            }
        });
        #[allow(unused_mut)]
        let (__apm_out, mut __apm_span) = ::apm_runtime::__private::instrument(
                __apm_span,
                __apm_fut,
            )
            .await;
        match &__apm_out {
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
        }
        ::core::mem::drop(__apm_span);
        __apm_out
    }
}
