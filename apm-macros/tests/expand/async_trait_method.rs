#[span(name = "Repo::get")]
fn get<'life0, 'async_trait>(
    &'life0 self,
    id: u32,
) -> ::core::pin::Pin<Box<dyn ::core::future::Future<Output = Result<Row, DbError>> + ::core::marker::Send + 'async_trait>>
where
    'life0: 'async_trait,
    Self: 'async_trait,
{
    Box::pin(async move {
        let __self = self;
        let id = id;
        let __ret: Result<Row, DbError> = { __self.query(id).await };
        #[allow(unreachable_code)]
        __ret
    })
}
