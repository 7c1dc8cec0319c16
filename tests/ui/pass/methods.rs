use apm_runtime::{propagate, span, transaction};

struct Service {
    hits: u32,
    name: String,
}

trait Handler {
    fn handle(&mut self, n: u32) -> Result<u32, String>;
    fn name(&self) -> &str;
}

impl Service {
    #[span]
    fn by_ref(&self) -> &str {
        &self.name
    }

    #[span(name = "Service::bump")]
    fn by_mut(&mut self) -> u32 {
        self.hits += 1;
        self.hits
    }

    #[transaction]
    fn by_value(self) -> String {
        self.name
    }

    #[span]
    fn assoc() -> Self {
        Service { hits: 0, name: "svc".into() }
    }

    #[propagate]
    fn spawn_with_self(&self) -> u32 {
        std::thread::scope(|s| s.spawn(|| self.hits).join().unwrap())
    }

    #[span]
    fn get_mut(&mut self) -> Result<&mut u32, ()> {
        if self.hits > 100 {
            return Err(());
        }
        Ok(&mut self.hits)
    }

    #[span]
    fn name_sync(&self) -> Result<&str, String> {
        Ok(&self.name)
    }

    #[span]
    async fn unsized_async(&self) -> Box<dyn std::fmt::Debug> {
        Box::new(self.hits)
    }

    #[span]
    async fn name_async(&self) -> Result<&str, String> {
        Ok(&self.name)
    }

    #[span]
    fn boxed_self(self: Box<Self>) -> u32 {
        self.hits
    }
}

impl Handler for Service {
    #[transaction(type = "request", labels(n))]
    fn handle(&mut self, n: u32) -> Result<u32, String> {
        if n == 0 {
            return Err("zero".into());
        }
        self.hits += n;
        Ok(self.hits)
    }

    #[span]
    fn name(&self) -> &str {
        &self.name
    }
}

struct Generic<T>(T);

impl<T: Clone + Send + 'static> Generic<T> {
    #[span]
    fn get(&self) -> T {
        let v = self.0.clone();
        std::thread::spawn(move || v).join().ok().unwrap()
    }
}

fn main() {
    let mut s = Service::assoc();
    assert_eq!(s.by_ref(), "svc");
    assert_eq!(s.by_mut(), 1);
    assert_eq!(s.handle(2), Ok(3));
    assert!(s.handle(0).is_err());
    assert_eq!(Handler::name(&s), "svc");
    assert_eq!(s.spawn_with_self(), 3);
    *s.get_mut().unwrap() += 1;
    let _ = s.name_async();
    let _ = s.unsized_async();
    assert_eq!(s.name_sync(), Ok("svc"));
    assert_eq!(Box::new(Service::assoc()).boxed_self(), 0);
    assert_eq!(s.by_value(), "svc");
    assert_eq!(Generic(5).get(), 5);
}
