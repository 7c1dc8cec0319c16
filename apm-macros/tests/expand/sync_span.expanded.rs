fn load(id: u64, pool: &threadpool::ThreadPool) -> usize {
    #[allow(unused_mut)]
    let mut __apm_span = ::apm_runtime::__private::span(|| {
        ::apm_runtime::Span::builder("load")
            .with_type("db")
            .subtype("postgresql")
            .action("query")
    });
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
    let __apm_guard = __apm_span.attach();
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
}
