fn get<'__apm_life0>(
    &'__apm_life0 self,
    id: u32,
    __apm_arg2: (u8, u8),
    buf: Vec<u8>,
) -> impl ::core::future::Future<
    Output = Result<&'__apm_life0 str, Error>,
> + ::apm_runtime::__private::Captures<
    (&'__apm_life0 (), ::core::marker::PhantomData<Self>),
> {
    let __apm_parent = ::apm_runtime::Context::current();
    async move {
        let _ = &self;
        let id = id;
        let __apm_arg2 = __apm_arg2;
        let (a, _) = __apm_arg2;
        let mut buf = buf;
        #[allow(unused_mut)]
        let mut __apm_span = ::apm_runtime::Span::builder("Store::get")
            .child_of(&__apm_parent)
            .start();
        if ::apm_runtime::__private::records(&__apm_span) {
            #[allow(unused_imports)]
            use ::apm_runtime::__private::{
                LabelViaNative as _, LabelViaDisplay as _, LabelViaDebug as _,
            };
            ::apm_runtime::__private::label(
                &mut __apm_span,
                "id",
                (&&&::apm_runtime::__private::LabelOf(&(id))).__apm_label_value(),
            );
        }
        let __apm_fut = ::apm_runtime::__private::typed_future::<
            Result<&str, Error>,
            _,
        >(async move {
            {
                let __apm_ret: Result<&str, Error> = {
                    buf.push(a);
                    self.load(id).await
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

fn fan_out<'__apm_life0>(
    v: &'__apm_life0 [u32],
) -> impl ::core::future::Future<
    Output = u32,
> + ::apm_runtime::__private::Captures<(&'__apm_life0 (),)> {
    let __apm_parent = ::apm_runtime::Context::current();
    __apm_parent
        .wrap_future(
            ::apm_runtime::__private::typed_future::<
                u32,
                _,
            >(async move {
                let v = v;
                let __apm_ctx = ::apm_runtime::Context::current();
                let __apm_ret: u32 = {
                    std::thread::scope(|s| {
                        let __apm_guard = __apm_ctx.attach();
                        s.spawn(|| {
                                let __apm_guard = __apm_ctx.attach();
                                v.len() as u32
                            })
                            .join()
                            .unwrap()
                    })
                };
                #[allow(unreachable_code)] __apm_ret
            }),
        )
}
