fn bump(&mut self, by: u32) -> u32 {
    #[allow(unused_mut)]
    let mut __apm_span = ::apm_runtime::__private::span(|| ::apm_runtime::Span::builder(
        "bump",
    ));
    let __apm_guard = __apm_span.attach();
    {
        self.hits += by;
        let hits = self.hits;
        std::thread::spawn({
                let __apm_ctx = ::apm_runtime::Context::current();
                move || {
                    let __apm_guard = __apm_ctx.attach();
                    hits
                }
            })
            .join()
            .unwrap()
    }
}
