fn get<'life0, 'async_trait>(
    &'life0 self,
    id: u32,
) -> ::core::pin::Pin<
    Box<
        dyn ::core::future::Future<
            Output = Result<Row, DbError>,
        > + ::core::marker::Send + 'async_trait,
    >,
>
where
    'life0: 'async_trait,
    Self: 'async_trait,
{
    let __apm_parent = ::apm_runtime::Context::current();
    Box::pin(async move {
        #[allow(unused_mut)]
        let mut __apm_span = ::apm_runtime::Span::builder("Repo::get")
            .child_of(&__apm_parent)
            .start();
        let __apm_fut = ::apm_runtime::__private::typed_future::<
            Result<Row, DbError>,
            _,
        >(async move {
            {
                let __apm_ret: Result<Row, DbError> = {
                    let __self = self;
                    let id = id;
                    let __ret: Result<Row, DbError> = { __self.query(id).await };
                    #[allow(unreachable_code)] __ret
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
    })
}
