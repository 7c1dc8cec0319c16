use apm_runtime::{propagate, span, transaction};

#[span]
async fn plain(x: u32) -> u32 {
    x + 1
}

#[transaction(type = "request")]
async fn with_question(s: &str) -> Result<u32, std::num::ParseIntError> {
    let v: u32 = s.parse()?;
    if v == 0 {
        return Ok(1);
    }
    Ok(plain(v).await)
}

#[span]
async fn borrows<'a>(s: &'a str, t: &str) -> &'a str {
    let _ = t;
    s
}

#[propagate]
async fn propagates(v: Vec<u32>) -> u32 {
    let h = std::thread::spawn(|| 1);
    let inner = async { v.iter().sum::<u32>() };
    inner.await + h.join().unwrap()
}

#[span]
async fn impl_out() -> impl std::fmt::Display {
    5
}

struct S(u32);

impl S {
    #[span]
    async fn method(&self) -> u32 {
        self.0
    }

    #[span]
    async fn method_mut(&mut self) -> Result<u32, ()> {
        self.0 += 1;
        Ok(self.0)
    }
}

#[async_trait::async_trait]
trait Store {
    async fn load(&self, id: u32) -> Result<String, String>;
    async fn save(&mut self, v: String);
}

#[async_trait::async_trait]
impl Store for S {
    #[span(name = "S::load", labels(id))]
    async fn load(&self, id: u32) -> Result<String, String> {
        if id == 0 {
            return Err("none".into());
        }
        Ok(format!("{}{id}", self.0))
    }

    #[transaction]
    async fn save(&mut self, v: String) {
        self.0 = v.len() as u32;
    }
}

fn assert_send<T: Send>(t: T) -> T {
    t
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        assert_eq!(assert_send(plain(1)).await, 2);
        assert_eq!(assert_send(with_question("2")).await, Ok(3));
        assert_eq!(borrows("a", "b").await, "a");
        assert_eq!(propagates(vec![1, 2]).await, 4);
        assert_eq!(impl_out().await.to_string(), "5");
        let mut s = S(1);
        assert_eq!(s.method().await, 1);
        assert_eq!(s.method_mut().await, Ok(2));
        assert_eq!(s.load(3).await.unwrap(), "23");
        s.save("abc".into()).await;
        assert_eq!(s.0, 3);
    });
}
