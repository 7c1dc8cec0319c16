use std::collections::HashMap;
use std::sync::mpsc;

use apm_runtime::{propagate, span, transaction};
use rayon::prelude::*;

#[transaction(traceparent = headers)]
fn from_vec(headers: Vec<(String, String)>) {}

#[transaction(traceparent = headers)]
fn from_map(headers: &HashMap<String, String>) {}

#[transaction(traceparent = apm_runtime::propagation::HeaderFn(|name: &str| (name == "traceparent").then(|| tp.to_string())))]
fn from_fn(tp: &str) {}

#[propagate]
fn kinds(v: &[String]) -> usize {
    // Inference of closure parameters is kept.
    let lens: Vec<usize> = v.par_iter().map(|x| x.len()).collect();
    let strs: Vec<String> = lens.iter().map(|x| x.to_string()).collect();
    // FnMut that mutates a local: not turned into `move`.
    let mut count = 0;
    v.iter().for_each(|_| count += 1);
    // FnOnce consuming a local.
    let owned = String::from("x");
    let consume = || owned;
    let back = consume();
    // Nested closures, and closures inside move closures inside loops.
    let (tx, rx) = mpsc::channel();
    for i in 0..2 {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let doubled: Vec<u32> = vec![i, i].iter().map(|x| x * 2).collect();
            tx.send(doubled.iter().sum::<u32>()).unwrap();
        });
    }
    drop(tx);
    let total: u32 = rx.iter().sum();
    rayon::join(|| count, || total);
    count + strs.len() + back.len() + total as usize
}

#[span]
fn markers(v: Vec<u32>) -> u32 {
    let pool = threadpool::ThreadPool::new(2);
    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    pool.execute(
        #[span(name = "job", type = "worker", labels(n = v.len()))]
        move || tx.send(v.iter().sum::<u32>()).unwrap(),
    );
    pool.execute(
        #[propagate]
        move || tx2.send(1).unwrap(),
    );
    let sum: u32 = rx.iter().take(2).sum();
    let fut = #[span(name = "block")]
    async move {
        sum
    };
    let fut2 = #[propagate]
    async {
        1
    };
    let _ = (fut, fut2);
    sum
}

#[span]
fn nested_item() -> u32 {
    fn helper() -> u32 {
        let c = |x: u32| x + 1;
        c(1)
    }
    helper()
}

fn main() {
    from_vec(vec![]);
    from_map(&HashMap::new());
    from_fn("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    assert_eq!(kinds(&["a".into(), "bb".into()]), 2 + 2 + 1 + 4);
    assert_eq!(markers(vec![1, 2]), 4);
    assert_eq!(nested_item(), 2);
}
