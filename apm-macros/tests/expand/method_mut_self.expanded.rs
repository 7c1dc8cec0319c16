fn bump(&mut self, by: u32) -> u32 {
    ::apm_runtime::__private::in_span::<
        u32,
        _,
        _,
        _,
    >(
        || ::apm_runtime::Span::builder("bump"),
        move |_| {
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
        },
        |_, _| {},
    )
}
