#[span]
async fn fetch(url: &str) -> Result<String, reqwest::Error> {
    let handle = tokio::spawn(async move { get(url).await });
    handle.await.unwrap()
}
