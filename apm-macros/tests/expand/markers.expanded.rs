fn run(pool: &threadpool::ThreadPool, items: Vec<String>) {
    #[allow(unused_imports)]
    use span as _;
    #[allow(unused_imports)]
    use propagate as _;
    #[allow(unused_mut)]
    let mut __apm_tx = ::apm_runtime::Transaction::builder("run").start();
    let __apm_guard = __apm_tx.attach();
    let __apm_ctx = ::apm_runtime::Context::current();
    {
        for item in items {
            pool.execute({
                let __apm_ctx = ::apm_runtime::Context::current();
                move || {
                    let __apm_guard = __apm_ctx.attach();
                    #[allow(unused_mut)]
                    let mut __apm_span = ::apm_runtime::__private::span(|| ::apm_runtime::Span::builder(
                        "job",
                    ));
                    if ::apm_runtime::__private::records(&__apm_span) {
                        #[allow(unused_imports)]
                        use ::apm_runtime::__private::{
                            LabelViaNative as _, LabelViaDisplay as _, LabelViaDebug as _,
                        };
                        ::apm_runtime::__private::label(
                            &mut __apm_span,
                            "len",
                            (&&&::apm_runtime::__private::LabelOf(&(item.len())))
                                .__apm_label_value(),
                        );
                    }
                    let __apm_span_guard = __apm_span.attach();
                    process(&item)
                }
            });
        }
        std::thread::scope(|s| {
            s.spawn(|| {
                let __apm_guard = __apm_ctx.attach();
                pool.join()
            });
        });
        let fut = ::apm_runtime::__private::lazy_span(
            ::apm_runtime::Context::current(),
            move |__apm_parent: &::apm_runtime::Context| {
                #[allow(unused_mut)]
                let mut __apm_span = ::apm_runtime::Span::builder("later")
                    .child_of(__apm_parent)
                    .start();
                __apm_span
            },
            async move { 1 },
        );
        drop(fut);
    }
}
