fn total(v: &[u32]) -> u32 {
    let __apm_ctx = ::apm_runtime::Context::current();
    {
        let mut n = 0;
        v.iter()
            .for_each(|x| {
                let __apm_guard = __apm_ctx.attach();
                n += x;
            });
        std::thread::scope(|s| {
            let __apm_guard = __apm_ctx.attach();
            {
                s.spawn(|| {
                    let __apm_guard = __apm_ctx.attach();
                    v.len()
                });
            }
        });
        std::thread::spawn({
                let __apm_ctx = ::apm_runtime::Context::current();
                move || {
                    let __apm_guard = __apm_ctx.attach();
                    work()
                }
            })
            .join()
            .unwrap();
        let lens: Vec<usize> = v
            .par_iter()
            .map({
                let __apm_ctx = ::apm_runtime::Context::current();
                move |x| {
                    let __apm_guard = __apm_ctx.attach();
                    x.count_ones() as usize
                }
            })
            .collect();
        n + lens.len() as u32
    }
}
