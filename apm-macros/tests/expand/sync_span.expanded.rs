fn load(id: u64, pool: &threadpool::ThreadPool) -> usize {
    ::apm_runtime::__private::in_span::<
        usize,
        _,
        _,
        _,
    >(
        || {
            ::apm_runtime::Span::builder("load")
                .with_type("db")
                .subtype("postgresql")
                .action("query")
        },
        move |__apm_span| {
            if let ::core::option::Option::Some(mut __apm_span) = __apm_span {
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
            }
            {
                pool.execute({
                    let __apm_ctx = ::apm_runtime::Context::current();
                    move || {
                        let __apm_guard = __apm_ctx.attach();
                        fetch(id)
                    }
                });
                42
            }
        },
        |_, _| {},
    )
}
