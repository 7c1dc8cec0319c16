//! The expansion of `#[transaction]`, `#[span]` and `#[propagate]` on a fn, as a plain function
//! over `proc_macro2` token streams (so it can be unit-tested and snapshot-tested).

use std::collections::HashSet;

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};
use syn::visit::Visit;
use syn::visit_mut::VisitMut;
use syn::{Block, Expr, FnArg, Item, ItemFn, Path, ReturnType, Stmt, Type};

use crate::options::{Kind, Label, Options};
use crate::rewrite::{self, ctx_ident, guard_ident, span_ident, Mode, Rewriter};

/// Expands one attribute. On error, returns the error plus the item unchanged (minus markers),
/// so one mistake gives one error message rather than a cascade.
pub fn expand(kind: Kind, attr: TokenStream, item: TokenStream) -> TokenStream {
    if let Some(err) = closure_without_outer_macro(kind, &item) {
        // rustc already reports the attribute on an expression; say what to do about it, and
        // expand to a single expression so no follow-on parse errors appear.
        return err.to_compile_error();
    }
    match try_expand(kind, attr, item.clone()) {
        Ok(ts) => ts,
        Err(err) => {
            let mut out = err.to_compile_error();
            match syn::parse2::<ItemFn>(item.clone()) {
                Ok(mut f) => {
                    StripMarkers.visit_item_fn_mut(&mut f);
                    out.extend(f.into_token_stream());
                }
                Err(_) => out.extend(item),
            }
            out
        }
    }
}

/// The macro was applied to a closure or async block directly (possible only on nightly, or as
/// an error on stable): markers must be consumed by a macro on the enclosing fn.
fn closure_without_outer_macro(kind: Kind, item: &TokenStream) -> Option<syn::Error> {
    if syn::parse2::<Item>(item.clone()).is_ok() {
        return None;
    }
    let first = item.clone().into_iter().next()?;
    let closure_like = match &first {
        proc_macro2::TokenTree::Ident(i) => i == "move" || i == "async" || i == "static",
        proc_macro2::TokenTree::Punct(p) => p.as_char() == '|',
        _ => false,
    };
    closure_like.then(|| {
        syn::Error::new(
            first.span(),
            format!(
                "{} on a closure or async block is a marker: it needs #[transaction], #[span] or #[propagate] on the enclosing fn, which consumes it (on stable Rust)",
                kind.attr()
            ),
        )
    })
}

fn not_a_fn(kind: Kind, item: &Item) -> syn::Error {
    let msg = format!("{} can only be applied to functions and methods (with a body)", kind.attr());
    match item {
        Item::Struct(i) => syn::Error::new_spanned(i.struct_token, msg),
        Item::Enum(i) => syn::Error::new_spanned(i.enum_token, msg),
        Item::Union(i) => syn::Error::new_spanned(i.union_token, msg),
        Item::Const(i) => syn::Error::new_spanned(i.const_token, msg),
        Item::Static(i) => syn::Error::new_spanned(i.static_token, msg),
        Item::Impl(i) => syn::Error::new_spanned(i.impl_token, msg),
        Item::Trait(i) => syn::Error::new_spanned(i.trait_token, msg),
        Item::Mod(i) => syn::Error::new_spanned(i.mod_token, msg),
        Item::Type(i) => syn::Error::new_spanned(i.type_token, msg),
        Item::Use(i) => syn::Error::new_spanned(i.use_token, msg),
        Item::ExternCrate(i) => syn::Error::new_spanned(i.crate_token, msg),
        other => syn::Error::new_spanned(other, msg),
    }
}

fn parse_fn(kind: Kind, item: TokenStream) -> syn::Result<ItemFn> {
    if let Ok(f) = syn::parse2::<ItemFn>(item.clone()) {
        return Ok(f);
    }
    // A trait method declaration without a body parses as a `TraitItemFn`.
    if let Ok(f) = syn::parse2::<syn::TraitItemFn>(item.clone()) {
        return Err(syn::Error::new_spanned(
            f.sig.fn_token,
            format!("{} needs a fn with a body: put it on the impl's method, not the trait's declaration", kind.attr()),
        ));
    }
    let item: Item = syn::parse2(item)?;
    Err(not_a_fn(kind, &item))
}

/// The `Output = R` of `Pin<Box<dyn Future<Output = R> + ...>>` (what `#[async_trait]` returns).
fn future_output(ret: &ReturnType) -> Option<Type> {
    let ReturnType::Type(_, ty) = ret else {
        return None;
    };
    struct Find(Option<Type>);
    impl<'ast> Visit<'ast> for Find {
        fn visit_assoc_type(&mut self, a: &'ast syn::AssocType) {
            if a.ident == "Output" && self.0.is_none() {
                self.0 = Some(a.ty.clone());
            }
        }
    }
    let mut f = Find(None);
    f.visit_type(ty);
    f.0
}

/// The `async move { ... }` inside `Box::pin(...)` as the tail of an `#[async_trait]` method.
fn async_trait_body(block: &mut Block) -> Option<&mut syn::ExprAsync> {
    let Some(Stmt::Expr(Expr::Call(call), None)) = block.stmts.last_mut() else {
        return None;
    };
    let Expr::Path(p) = &*call.func else {
        return None;
    };
    let segs: Vec<String> = p.path.segments.iter().map(|s| s.ident.to_string()).collect();
    if !(segs.len() >= 2 && segs[segs.len() - 2] == "Box" && segs[segs.len() - 1] == "pin") {
        return None;
    }
    if call.args.len() != 1 {
        return None;
    }
    match call.args.first_mut() {
        Some(Expr::Async(a)) if a.capture.is_some() => Some(a),
        _ => None,
    }
}

fn is_result(ty: &Type) -> bool {
    match ty {
        Type::Path(p) => p.qself.is_none() && p.path.segments.last().is_some_and(|s| s.ident == "Result"),
        Type::Paren(p) => is_result(&p.elem),
        Type::Group(g) => is_result(&g.elem),
        _ => false,
    }
}

fn contains_impl_trait(ty: &Type) -> bool {
    struct F(bool);
    impl<'ast> Visit<'ast> for F {
        fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
            self.0 = true;
        }
        fn visit_type_infer(&mut self, _: &'ast syn::TypeInfer) {
            self.0 = true;
        }
    }
    let mut f = F(false);
    f.visit_type(ty);
    f.0
}

/// The return type to annotate the wrapped body with, if it can be written in expression position.
fn nameable(ty: Option<&Type>) -> Option<&Type> {
    ty.filter(|t| !contains_impl_trait(t))
}

fn try_expand(kind: Kind, attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let opts = Options::parse(kind, attr)?;
    let mut f = parse_fn(kind, item)?;
    if let Some(c) = &f.sig.constness {
        return Err(syn::Error::new_spanned(c, format!("{} can't instrument a `const fn`", kind.attr())));
    }

    // Argument names, for `labels(arg)`.
    let mut args = HashSet::new();
    for input in &f.sig.inputs {
        match input {
            FnArg::Receiver(_) => {
                args.insert("self".to_string());
            }
            FnArg::Typed(t) => rewrite::collect_pat_bindings(&t.pat, &mut args),
        }
    }
    for l in &opts.labels {
        if let Label::Arg(i) = l {
            if !args.contains(&i.to_string()) {
                return Err(syn::Error::new(
                    i.span(),
                    format!(
                        "`{i}` is not an argument of this fn; to record an expression, write `labels({i} = <expr>)`"
                    ),
                ));
            }
        }
    }

    let krate: Path = opts.krate.clone().unwrap_or_else(|| syn::parse_quote!(::apm_runtime));

    // `#[propagate]` together with `#[transaction]`/`#[span]` on one fn: the span or transaction
    // must be entered before the context is bound, so the span/transaction macro does both.
    let sibling = |a: &syn::Attribute, names: &[&str]| {
        a.path().segments.last().is_some_and(|s| names.iter().any(|n| s.ident == n))
    };
    let mut absorbed_propagate = false;
    let mut consumed: Vec<Path> = Vec::new();
    if kind == Kind::Propagate {
        if f.attrs.iter().any(|a| sibling(a, &["transaction", "span"])) {
            // Runs before the span/transaction macro: hand over to it.
            f.attrs.push(syn::parse_quote!(#[#krate::propagate]));
            return Ok(f.into_token_stream());
        }
    } else if let Some(pos) = f.attrs.iter().position(|a| sibling(a, &["propagate"])) {
        consumed.push(f.attrs.remove(pos).path().clone());
        absorbed_propagate = true;
    }
    let mode = match (kind, opts.propagate.as_ref().map(|b| b.value)) {
        _ if absorbed_propagate => Mode::All,
        (Kind::Propagate, _) => Mode::All,
        (_, Some(false)) => Mode::Off,
        _ => Mode::MoveOnly,
    };
    let fn_name = f.sig.ident.to_string();

    // `#[async_trait]` already turned `async fn` into `fn -> Pin<Box<dyn Future>>` with the body
    // in `Box::pin(async move { ... })`: instrument that async block as the body.
    let async_trait_output = if f.sig.asyncness.is_none() { future_output(&f.sig.output) } else { None };
    let is_async_trait = async_trait_output.is_some() && async_trait_body(&mut f.block).is_some();

    let mut bindings = rewrite::Bindings::default();
    bindings.names.extend(args.iter().cloned());
    bindings.visit_block(&f.block);
    let mut rw = Rewriter::new(&krate, mode, fn_name.clone(), bindings.names);

    if is_async_trait {
        let a = async_trait_body(&mut f.block).expect("checked above");
        let mut body = a.block.clone();
        rw.visit_block_mut(&mut body);
        // The method itself runs when called: capture the caller's context there, so the span
        // is its child even if the returned future is first polled elsewhere (a spawned task).
        let parent = syn::Ident::new("__apm_parent", Span::mixed_site());
        let new_body =
            instrument_async(kind, &opts, &krate, &fn_name, body, async_trait_output.as_ref(), &rw, Some(&parent));
        a.block = syn::parse2(quote!({ #new_body }))?;
        if kind == Kind::Span {
            let boxed = f.block.stmts.pop().expect("the Box::pin tail");
            f.block.stmts.push(syn::parse_quote!(let #parent = #krate::Context::current();));
            f.block.stmts.push(boxed);
        }
    } else {
        let mut body = (*f.block).clone();
        rw.visit_block_mut(&mut body);
        let ret = match &f.sig.output {
            ReturnType::Default => None,
            ReturnType::Type(_, t) => Some((**t).clone()),
        };
        let new_body = if f.sig.asyncness.is_some() && takes_context_at_call(kind, &f.attrs) {
            let parent = syn::Ident::new("__apm_parent", Span::mixed_site());
            let rebind = async_fn_to_future_fn(&mut f.sig, &krate);
            let inner = if kind == Kind::Propagate {
                // Every poll runs under the caller's context, as a closure body would.
                let body = typed_async_block(&krate, body, ret.as_ref(), &rw, &rebind);
                quote!(#parent.wrap_future(#body))
            } else {
                let instrumented =
                    instrument_async(kind, &opts, &krate, &fn_name, body, ret.as_ref(), &rw, Some(&parent));
                quote!(async move { #rebind #instrumented })
            };
            quote! {
                let #parent = #krate::Context::current();
                #inner
            }
        } else if f.sig.asyncness.is_some() {
            instrument_async(kind, &opts, &krate, &fn_name, body, ret.as_ref(), &rw, None)
        } else {
            let track_caller = f.attrs.iter().any(|a| a.path().is_ident("track_caller"));
            instrument_sync(kind, &opts, &krate, &fn_name, body, ret.as_ref(), &rw, track_caller)
        };
        *f.block = syn::parse2(quote!({ #new_body }))?;
    }
    consumed.append(&mut rw.consumed);
    let uses = uses_of(&consumed);
    f.block.stmts.splice(0..0, uses);
    if let Some(first) = rw.errors.first().cloned() {
        let mut all = first;
        for e in rw.errors.into_iter().skip(1) {
            all.combine(e);
        }
        return Err(all);
    }
    Ok(f.into_token_stream())
}

/// `use <path> as _;` for each attribute this macro consumed (a `#[propagate]` under it, the
/// markers in its body): the compiler never resolves a consumed attribute, so the user's
/// `use apm_runtime::propagate;` written for it would otherwise warn as unused, and correct code
/// would not build under `-D warnings`. An import costs nothing at run time.
fn uses_of(paths: &[Path]) -> Vec<Stmt> {
    let mut seen = HashSet::new();
    paths
        .iter()
        .filter(|p| seen.insert(p.to_token_stream().to_string()))
        .map(|p| syn::parse_quote!(#[allow(unused_imports)] use #p as _;))
        .collect()
}

/// Whether an `async fn`'s macro rewrites it into a plain fn that captures the caller's context
/// when it is called (see [`async_fn_to_future_fn`]). Not for a transaction, which has no parent
/// in the current context (it starts a trace or continues `traceparent`, an argument either
/// way): it starts at the first poll, as the `async fn` it stays. Not when another attribute
/// needs the `async fn` it was written as (`#[tokio::main]`, `#[tokio::test]`, …, expanded after
/// this one): nothing calls those from instrumented code.
fn takes_context_at_call(kind: Kind, attrs: &[syn::Attribute]) -> bool {
    kind != Kind::Transaction
        && !attrs.iter().any(|a| a.path().segments.last().is_some_and(|s| s.ident == "main" || s.ident == "test"))
}

/// Turns `async fn f(args) -> R` into `fn f(args) -> impl Future<Output = R> + ..`, so that code
/// can run when `f` is called (an `async fn`'s body runs only at its first poll), and returns the
/// statements that move every argument into the future, as the `async fn` did: the returned
/// future owns the arguments whether or not its body names them, and drops them when it ends.
///
/// The future captures every lifetime of the arguments, as an `async fn`'s does. Before edition
/// 2024 an `impl Trait` return type captures only the lifetimes its bounds name, so the elided
/// ones are named (`'__apm_life0`, ..) and every lifetime is named in a `Captures` bound, and so
/// is `Self` (its lifetimes, from the impl): `+ Captures<(&'a (), &'__apm_life0 (), PhantomData<Self>)>`. Auto traits leak through `impl Future`: the future
/// is `Send` exactly when the `async fn`'s was.
fn async_fn_to_future_fn(sig: &mut syn::Signature, krate: &Path) -> TokenStream {
    // Errors about the returned future (a lifetime it can't capture) point at the `async`.
    let at = sig.asyncness.take().map_or_else(Span::call_site, |a| a.span);
    let mut namer = NameElided::default();
    let mut mentions_self = false;
    let mut rebind = Vec::new();
    for (i, input) in sig.inputs.iter_mut().enumerate() {
        match input {
            FnArg::Receiver(r) => {
                mentions_self = true;
                if r.colon_token.is_none() {
                    // `&self`: what is printed is `reference`; `ty` (`&Self`) must agree with it.
                    if let Some((_, lifetime)) = &mut r.reference {
                        let l = lifetime.get_or_insert_with(|| namer.fresh()).clone();
                        let m = r.mutability;
                        *r.ty = syn::parse_quote!(&#l #m Self);
                    }
                } else {
                    Elide(|| namer.fresh()).visit_type_mut(&mut r.ty);
                }
                // Named so the future owns it even when the body never uses `self`.
                rebind.push(quote!(let _ = &self;));
            }
            FnArg::Typed(t) => {
                Elide(|| namer.fresh()).visit_type_mut(&mut t.ty);
                mentions_self |= contains_self(&t.ty);
                match &mut *t.pat {
                    syn::Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() && p.ident != "self" => {
                        // The parameter keeps its name (rustdoc, `labels(arg)`); the future's
                        // binding takes over its `mut`.
                        let mutability = p.mutability.take();
                        let ident = &p.ident;
                        rebind.push(quote!(let #mutability #ident = #ident;));
                    }
                    pat => {
                        let arg = syn::Ident::new(&format!("__apm_arg{i}"), Span::mixed_site());
                        let user_pat = std::mem::replace(
                            pat,
                            syn::Pat::Ident(syn::PatIdent {
                                attrs: Vec::new(),
                                by_ref: None,
                                mutability: None,
                                ident: arg.clone(),
                                subpat: None,
                            }),
                        );
                        // Moved in whole first, so a pattern that binds part of it (or `_`)
                        // does not leave the rest to be dropped at the call.
                        rebind.push(quote!(let #arg = #arg; let #user_pat = #arg;));
                    }
                }
            }
        }
    }
    let mut lifetimes = std::mem::take(&mut namer.named);
    for input in &sig.inputs {
        let ty = match input {
            FnArg::Receiver(r) => &r.ty,
            FnArg::Typed(t) => &t.ty,
        };
        let mut c = CollectLifetimes::default();
        c.visit_type(ty);
        for l in c.found {
            if !lifetimes.iter().any(|k| k.ident == l.ident) {
                lifetimes.push(l);
            }
        }
    }
    // The output's elided lifetimes get the name elision gave them (`&self`'s, or the one
    // lifetime of the arguments): left elided next to named arguments, they would warn
    // (`mismatched_lifetime_syntaxes`) where the `async fn` did not.
    let receiver_ref = sig.inputs.iter().find_map(|i| match i {
        FnArg::Receiver(r) => match &*r.ty {
            Type::Reference(t) => t.lifetime.clone(),
            _ => None,
        },
        FnArg::Typed(_) => None,
    });
    let target = receiver_ref.or_else(|| (lifetimes.len() == 1).then(|| lifetimes[0].clone()));
    if let (Some(target), ReturnType::Type(_, ty)) = (target, &mut sig.output) {
        Elide(|| target.clone()).visit_type_mut(ty);
    }
    let fresh: Vec<&syn::Lifetime> =
        lifetimes.iter().filter(|l| l.ident.to_string().starts_with("__apm_life")).collect();
    for (n, l) in fresh.iter().enumerate() {
        sig.generics.params.insert(n, syn::GenericParam::Lifetime(syn::LifetimeParam::new((*l).clone())));
    }
    let output = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, t) => t.to_token_stream(),
    };
    // One bound naming them all: two bounds of one trait that differ only in a lifetime are
    // ambiguous to the trait solver where the future is an associated type (a trait's default
    // `async fn`), which then asks for the lifetimes to be equal.
    let self_marker = mentions_self.then(|| quote!(::core::marker::PhantomData<Self>,));
    let captures = (!lifetimes.is_empty() || mentions_self)
        .then(|| quote!(+ #krate::__private::Captures<(#(&#lifetimes (),)* #self_marker)>));
    sig.output = syn::parse_quote_spanned!(at=>
        -> impl ::core::future::Future<Output = #output> #captures
    );
    quote!(#(#rebind)*)
}

fn contains_self(ty: &Type) -> bool {
    struct F(bool);
    impl<'ast> Visit<'ast> for F {
        fn visit_path_segment(&mut self, s: &'ast syn::PathSegment) {
            self.0 |= s.ident == "Self";
            syn::visit::visit_path_segment(self, s);
        }
        fn visit_macro(&mut self, m: &'ast syn::Macro) {
            self.0 |=
                m.tokens.clone().into_iter().any(|t| matches!(&t, proc_macro2::TokenTree::Ident(i) if i == "Self"));
        }
    }
    let mut f = F(false);
    f.visit_type(ty);
    f.0
}

/// Gives every elided lifetime of a type (`&T`, `'_`) the one `name` returns, leaving alone the
/// ones that belong to a `fn(&T)` pointer or `Fn(&T)` bound, which elide within themselves.
/// Arguments get fresh names ([`NameElided`]); the return type gets what elision would give it.
struct Elide<F: FnMut() -> syn::Lifetime>(F);

impl<F: FnMut() -> syn::Lifetime> VisitMut for Elide<F> {
    fn visit_type_reference_mut(&mut self, r: &mut syn::TypeReference) {
        if r.lifetime.is_none() {
            r.lifetime = Some((self.0)());
        }
        syn::visit_mut::visit_type_reference_mut(self, r);
    }
    fn visit_lifetime_mut(&mut self, l: &mut syn::Lifetime) {
        if l.ident == "_" {
            *l = (self.0)();
        }
    }
    fn visit_type_bare_fn_mut(&mut self, _: &mut syn::TypeBareFn) {}
    fn visit_parenthesized_generic_arguments_mut(&mut self, _: &mut syn::ParenthesizedGenericArguments) {}
    fn visit_type_macro_mut(&mut self, _: &mut syn::TypeMacro) {}
}

/// Fresh names for the elided lifetimes of the arguments (`'__apm_life0`, ..), kept in order.
#[derive(Default)]
struct NameElided {
    named: Vec<syn::Lifetime>,
}

impl NameElided {
    fn fresh(&mut self) -> syn::Lifetime {
        let l = syn::Lifetime::new(&format!("'__apm_life{}", self.named.len()), Span::call_site());
        self.named.push(l.clone());
        l
    }
}

/// The lifetimes an argument type names, except those bound by a `for<..>` or local to a
/// `fn(..)` pointer or `Fn(..)` bound.
#[derive(Default)]
struct CollectLifetimes {
    found: Vec<syn::Lifetime>,
}

impl<'ast> Visit<'ast> for CollectLifetimes {
    fn visit_lifetime(&mut self, l: &'ast syn::Lifetime) {
        if l.ident != "static" && l.ident != "_" && !self.found.iter().any(|k| k.ident == l.ident) {
            self.found.push(l.clone());
        }
    }
    fn visit_type_bare_fn(&mut self, _: &'ast syn::TypeBareFn) {}
    fn visit_parenthesized_generic_arguments(&mut self, _: &'ast syn::ParenthesizedGenericArguments) {}
    fn visit_trait_bound(&mut self, b: &'ast syn::TraitBound) {
        if b.lifetimes.is_none() {
            syn::visit::visit_trait_bound(self, b);
        }
    }
    fn visit_type_macro(&mut self, _: &'ast syn::TypeMacro) {}
}

/// `typed_future::<R, _>(async move { <rebind> <ctx binding> let ret: R = <body>; ret })`: an
/// `async fn`'s body as the async block of the future fn `async_fn_to_future_fn` made, with the
/// fn's return type as the expected type of its tail (coercions, `?` conversions).
fn typed_async_block(
    krate: &Path,
    body: Block,
    ret: Option<&Type>,
    rw: &Rewriter,
    rebind: &TokenStream,
) -> TokenStream {
    let ctx = ctx_ident();
    let bind_ctx = rw.fn_level_uses_ctx().then(|| quote!(let #ctx = #krate::Context::current();));
    let unit: Type = syn::parse_quote!(());
    let ret = ret.unwrap_or(&unit);
    match nameable(Some(ret)) {
        Some(r) => {
            let tail = syn::Ident::new("__apm_ret", Span::mixed_site());
            quote!(#krate::__private::typed_future::<#r, _>(async move {
                #rebind
                #bind_ctx
                let #tail: #r = #body;
                #[allow(unreachable_code)]
                #tail
            }))
        }
        None => quote!(async move { #rebind #bind_ctx #body }),
    }
}

/// `__apm_tx` for a transaction, `__apm_span` for a span.
fn instr_ident(kind: Kind) -> syn::Ident {
    match kind {
        Kind::Transaction => syn::Ident::new("__apm_tx", Span::mixed_site()),
        _ => span_ident(),
    }
}

/// `let mut __apm_span = <start>; <labels>`
fn start_stmts(kind: Kind, opts: &Options, krate: &Path, fn_name: &str, parent: Option<&syn::Ident>) -> TokenStream {
    let name = span_name(opts, fn_name);
    let ty = opts.ty.as_ref().map(|t| quote!(.with_type(#t)));
    let s = instr_ident(kind);
    let start = match kind {
        Kind::Transaction => {
            let tp = opts.traceparent.as_ref().map(|e| quote!(.continue_from(&(#e))));
            quote!(#krate::Transaction::builder(#name) #ty #tp .start())
        }
        _ => rewrite::span_start(krate, &name, rewrite::span_options(opts), parent.map(|p| quote!(&#p))),
    };
    let labels = rewrite::label_stmts(krate, opts, &s);
    quote! {
        #[allow(unused_mut)]
        let mut #s = #start;
        #(#labels)*
    }
}

/// The `name = ...` option, or the fn's name.
fn span_name(opts: &Options, fn_name: &str) -> TokenStream {
    match &opts.name {
        Some(n) => n.to_token_stream(),
        None => quote!(#fn_name),
    }
}

/// `match &out { Ok(_) => ok, Err(e) => fail }`. The error's details come from autoref
/// dispatch, which needs the error type known where it runs: with a return type that names no
/// concrete type (`Result<impl Display, E>`), the first candidate would be taken for an
/// inference variable and fail later, so only `Display`/`Debug`/the type name are tried there.
fn record_stmts(krate: &Path, target: &syn::Ident, out: &syn::Ident, ret: &Type) -> TokenStream {
    let e = syn::Ident::new("__apm_err", Span::mixed_site());
    let details = if nameable(Some(ret)).is_some() {
        quote! {
            #[allow(unused_imports)]
            use #krate::__private::{
                ErrViaError as _, ErrViaSendView as _, ErrViaView as _, ErrViaDisplay as _, ErrViaDebug as _,
                ErrViaTypeName as _,
            };
            let __apm_details = (&&&&&&#krate::__private::ErrMsg(#e)).__apm_error_details();
        }
    } else {
        quote! {
            #[allow(unused_imports)]
            use #krate::__private::{ErrViaDisplay as _, ErrViaDebug as _, ErrViaTypeName as _};
            let __apm_details = (&&&#krate::__private::ErrMsg(#e)).__apm_error_details();
        }
    };
    quote! {
        match &#out {
            ::core::result::Result::Ok(_) => #krate::__private::record_ok(&mut #target),
            ::core::result::Result::Err(#e) => {
                #details
                #krate::__private::record_err(&mut #target, #e, __apm_details);
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn instrument_sync(
    kind: Kind,
    opts: &Options,
    krate: &Path,
    fn_name: &str,
    body: Block,
    ret: Option<&Type>,
    rw: &Rewriter,
    track_caller: bool,
) -> TokenStream {
    let ctx = ctx_ident();
    let guard = guard_ident();
    let s = instr_ident(kind);
    let bind_ctx = rw.fn_level_uses_ctx().then(|| quote!(let #ctx = #krate::Context::current();));
    if kind == Kind::Propagate {
        return quote! { #bind_ctx #body };
    }
    // A span's body runs as a closure handed to the runtime, which calls it directly when there
    // is nothing to record: no span exists on that path. Not for a `#[track_caller]` fn (the
    // closure would become the caller its panics report) or one returning `!` (which can't be
    // named as the closure's type).
    let never = matches!(ret, Some(Type::Never(_)));
    if kind == Kind::Span && !track_caller && !never {
        return span_around(opts, krate, fn_name, body, ret, bind_ctx);
    }
    let start = start_stmts(kind, opts, krate, fn_name, None);
    let enter = quote! {
        #start
        let #guard = #s.attach();
        #bind_ctx
    };
    match ret {
        Some(r) if is_result(r) => {
            let out = syn::Ident::new("__apm_out", Span::mixed_site());
            let record = record_stmts(krate, &s, &out, r);
            let run = match nameable(Some(r)) {
                Some(r) => quote!(#krate::__private::run::<#r, _>),
                None => quote!(#krate::__private::run),
            };
            quote! {
                #enter
                let #out = #run(move || #body);
                #record
                #out
            }
        }
        _ => quote! {
            #enter
            #body
        },
    }
}

/// `in_span(builder, move |span| { labels; body }, |span, out| record)`: see `instrument_sync`.
fn span_around(
    opts: &Options,
    krate: &Path,
    fn_name: &str,
    body: Block,
    ret: Option<&Type>,
    bind_ctx: Option<TokenStream>,
) -> TokenStream {
    let s = span_ident();
    let builder = rewrite::span_builder(krate, &span_name(opts, fn_name), rewrite::span_options(opts));
    let labels = rewrite::label_stmts(krate, opts, &s);
    let span_arg = if labels.is_empty() { quote!(_) } else { quote!(#s) };
    let labels = (!labels.is_empty()).then(|| {
        quote! {
            if let ::core::option::Option::Some(mut #s) = #s {
                #(#labels)*
            }
        }
    });
    let record = match ret {
        Some(r) if is_result(r) => {
            let out = syn::Ident::new("__apm_out", Span::mixed_site());
            let record = record_stmts(krate, &s, &out, r);
            quote!(|mut #s, #out| #record)
        }
        _ => quote!(|_, _| {}),
    };
    let call = match nameable(ret) {
        Some(r) => quote!(#krate::__private::in_span::<#r, _, _, _>),
        None => quote!(#krate::__private::in_span),
    };
    quote! {
        #call(
            || #builder,
            move |#span_arg| {
                #labels
                #bind_ctx
                #body
            },
            #record,
        )
    }
}

#[allow(clippy::too_many_arguments)]
fn instrument_async(
    kind: Kind,
    opts: &Options,
    krate: &Path,
    fn_name: &str,
    body: Block,
    ret: Option<&Type>,
    rw: &Rewriter,
    parent: Option<&syn::Ident>,
) -> TokenStream {
    let ctx = ctx_ident();
    let s = instr_ident(kind);
    let bind_ctx = rw.fn_level_uses_ctx().then(|| quote!(let #ctx = #krate::Context::current();));
    if kind == Kind::Propagate {
        return quote! { #bind_ctx #body };
    }
    let start = start_stmts(kind, opts, krate, fn_name, parent);
    let fut = syn::Ident::new("__apm_fut", Span::mixed_site());
    let out = syn::Ident::new("__apm_out", Span::mixed_site());
    let unit: Type = syn::parse_quote!(());
    let ret = ret.unwrap_or(&unit);
    let typed = match nameable(Some(ret)) {
        Some(r) => quote!(#krate::__private::typed_future::<#r, _>),
        None => quote!(::core::convert::identity),
    };
    // The body's tail gets the return type as its expected type, so coercions (`&String` to
    // `&str`, unsizing) still apply as they did in the `async fn`.
    let body = match nameable(Some(ret)) {
        Some(r) => {
            let tail = syn::Ident::new("__apm_ret", Span::mixed_site());
            quote!({
                let #tail: #r = #body;
                #[allow(unreachable_code)]
                #tail
            })
        }
        None => body.into_token_stream(),
    };
    let record = if is_result(ret) && nameable(Some(ret)).is_some() {
        record_stmts(krate, &s, &out, ret)
    } else {
        TokenStream::new()
    };
    quote! {
        #start
        let #fut = #typed(async move { #bind_ctx #body });
        #[allow(unused_mut)]
        let (#out, mut #s) = #krate::__private::instrument(#s, #fut).await;
        #record
        ::core::mem::drop(#s);
        #out
    }
}

/// Removes markers (used when reporting an error, to avoid follow-on errors).
struct StripMarkers;

impl VisitMut for StripMarkers {
    fn visit_expr_closure_mut(&mut self, c: &mut syn::ExprClosure) {
        c.attrs.retain(|a| !is_marker(a));
        syn::visit_mut::visit_expr_closure_mut(self, c);
    }
    fn visit_expr_async_mut(&mut self, a: &mut syn::ExprAsync) {
        a.attrs.retain(|a| !is_marker(a));
        syn::visit_mut::visit_expr_async_mut(self, a);
    }
    fn visit_macro_mut(&mut self, m: &mut syn::Macro) {
        m.tokens = strip_marker_tokens(m.tokens.clone());
    }
}

/// Removes `#[propagate]` / `#[span(...)]` from a macro's tokens.
fn strip_marker_tokens(tokens: TokenStream) -> TokenStream {
    use proc_macro2::{Group, TokenTree};
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut out = Vec::with_capacity(trees.len());
    let mut i = 0;
    while i < trees.len() {
        if let (TokenTree::Punct(p), Some(TokenTree::Group(g))) = (&trees[i], trees.get(i + 1)) {
            if p.as_char() == '#'
                && g.delimiter() == proc_macro2::Delimiter::Bracket
                && rewrite::find_marker_tokens(trees[i..i + 2].iter().cloned().collect()).is_some()
            {
                i += 2;
                continue;
            }
        }
        match &trees[i] {
            TokenTree::Group(g) => {
                let mut ng = Group::new(g.delimiter(), strip_marker_tokens(g.stream()));
                ng.set_span(g.span());
                out.push(TokenTree::Group(ng));
            }
            other => out.push(other.clone()),
        }
        i += 1;
    }
    out.into_iter().collect()
}

fn is_marker(a: &syn::Attribute) -> bool {
    a.path().segments.last().is_some_and(|s| s.ident == "propagate" || s.ident == "span" || s.ident == "transaction")
}
