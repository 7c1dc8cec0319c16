fn parts(v: &[u32]) -> u32 {
    #[allow(unused_imports)]
    use propagate as _;
    #[allow(unused_imports)]
    use span as _;
    #[allow(unused_mut)]
    let mut __apm_tx = ::apm_runtime::Transaction::builder("GET /parts").start();
    let __apm_guard = __apm_tx.attach();
    let __apm_ctx = ::apm_runtime::Context::current();
    {
        std::thread::scope(|s| {
            let __apm_guard = __apm_ctx.attach();
            s.spawn(|| {
                    let __apm_guard = __apm_ctx.attach();
                    #[allow(unused_mut)]
                    let mut __apm_span = ::apm_runtime::__private::span(|| ::apm_runtime::Span::builder(
                        "part",
                    ));
                    let __apm_span_guard = __apm_span.attach();
                    v.len() as u32
                })
                .join()
                .unwrap()
        })
    }
}
