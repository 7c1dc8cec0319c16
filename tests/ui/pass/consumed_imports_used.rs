// Attributes an outer macro consumes are never resolved by the compiler; the imports written for
// them must still count as used, so correct code builds under `-D warnings`.
#![deny(warnings)]
#![deny(unused_imports)]

mod sibling {
    // `propagate` is used only under `#[transaction]`, which consumes it.
    use apm_runtime::{propagate, transaction};

    #[transaction]
    #[propagate]
    pub fn fan_out(parts: &[u32]) -> u32 {
        std::thread::scope(|s| s.spawn(|| parts.iter().sum::<u32>()).join().unwrap())
    }
}

mod markers {
    // `propagate` and `span` are used only as markers inside the fn.
    use apm_runtime::{propagate, span, transaction};

    #[transaction(name = "markers")]
    pub fn marked(parts: &[u32]) -> u32 {
        std::thread::scope(|s| {
            let a = s.spawn(#[propagate] || parts.len() as u32);
            let b = s.spawn(#[span("sum")] || parts.iter().sum::<u32>());
            a.join().unwrap() + b.join().unwrap()
        })
    }
}

mod full_paths {
    #[apm_runtime::span]
    #[apm_runtime::propagate]
    pub fn spawned() -> u32 {
        std::thread::spawn(#[apm_runtime::span(name = "job")] move || 1).join().unwrap()
    }
}

mod async_sibling {
    use apm_runtime::{propagate, span};

    #[span]
    #[propagate]
    pub async fn joined(v: Vec<u32>) -> u32 {
        let inner = async { v.iter().sum::<u32>() };
        inner.await
    }
}

fn main() {
    assert_eq!(sibling::fan_out(&[1, 2]), 3);
    assert_eq!(markers::marked(&[1, 2]), 5);
    assert_eq!(full_paths::spawned(), 1);
    let _ = async_sibling::joined(vec![1]);
}
