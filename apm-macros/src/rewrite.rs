//! The body rewrite: closures and async blocks that carry the context.

use std::collections::HashSet;

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned};
use syn::visit::Visit;
use syn::visit_mut::VisitMut;
use syn::{Attribute, Expr, Ident, Item, Pat, Path};

use crate::options::{Kind, Label, Options};

/// Which closures the rewrite carries the context into (async blocks: all of them unless `Off`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// `propagate = false`: only closures and async blocks marked `#[propagate]`/`#[span]`.
    Off,
    /// `#[transaction]`/`#[span]`: `move` closures, async blocks, and marked closures.
    MoveOnly,
    /// `#[propagate]` on the fn: every closure and async block.
    All,
}

/// The identifier of the context binding the rewritten closures attach. Mixed-site hygiene: the
/// user's code can neither see nor shadow it.
pub fn ctx_ident() -> Ident {
    Ident::new("__apm_ctx", Span::mixed_site())
}

pub fn guard_ident() -> Ident {
    Ident::new("__apm_guard", Span::mixed_site())
}

pub fn span_ident() -> Ident {
    Ident::new("__apm_span", Span::mixed_site())
}

/// A marker on a closure or async block.
enum Marker {
    Propagate,
    Span(Box<Options>, Span),
}

fn marker_kind(attr: &Attribute) -> Option<Kind> {
    let last = attr.path().segments.last()?;
    match last.ident.to_string().as_str() {
        "propagate" => Some(Kind::Propagate),
        "span" => Some(Kind::Span),
        "transaction" => Some(Kind::Transaction),
        _ => None,
    }
}

pub struct Rewriter<'a> {
    pub krate: &'a Path,
    pub mode: Mode,
    /// Every name bound anywhere in the function (parameters, `let`s, patterns): a closure that
    /// names none of them captures nothing and can be made `move`.
    pub bindings: HashSet<String>,
    /// For each enclosing scope that owns a context binding (the fn, a rewritten or `move`
    /// closure, an async block): whether something in it borrows `__apm_ctx`.
    uses: Vec<bool>,
    pub errors: Vec<syn::Error>,
    pub fn_name: String,
    /// The paths of the markers consumed (see [`Rewriter::uses_of_consumed`]).
    pub consumed: Vec<Path>,
}

impl<'a> Rewriter<'a> {
    pub fn new(krate: &'a Path, mode: Mode, fn_name: String, bindings: HashSet<String>) -> Self {
        Rewriter { krate, mode, bindings, uses: vec![false], errors: Vec::new(), fn_name, consumed: Vec::new() }
    }

    /// Whether the fn-level code borrows the fn-level `__apm_ctx` binding.
    pub fn fn_level_uses_ctx(&self) -> bool {
        self.uses[0]
    }

    fn mark_use(&mut self) {
        *self.uses.last_mut().expect("scope stack is never empty") = true;
    }

    fn take_marker(&mut self, attrs: &mut Vec<Attribute>) -> Option<Marker> {
        let mut found: Option<Marker> = None;
        let mut err = None;
        attrs.retain(|attr| {
            let Some(kind) = marker_kind(attr) else { return true };
            self.consumed.push(attr.path().clone());
            if found.is_some() {
                err = Some(syn::Error::new_spanned(attr, "only one #[propagate] or #[span] marker per closure"));
                return false;
            }
            match kind {
                Kind::Transaction => {
                    err = Some(syn::Error::new_spanned(
                        attr.path(),
                        "#[transaction] can't mark a closure or async block: use #[span(...)] there, \
                         or put #[transaction] on a fn",
                    ));
                }
                Kind::Propagate => {
                    if let syn::Meta::Path(_) = attr.meta {
                        found = Some(Marker::Propagate);
                    } else {
                        err = Some(syn::Error::new_spanned(&attr.meta, "the #[propagate] marker takes no options"));
                    }
                }
                Kind::Span => {
                    let tokens = match &attr.meta {
                        syn::Meta::Path(_) => TokenStream::new(),
                        syn::Meta::List(l) => l.tokens.clone(),
                        syn::Meta::NameValue(nv) => {
                            err = Some(syn::Error::new_spanned(nv, "expected #[span] or #[span(...)]"));
                            return false;
                        }
                    };
                    match Options::parse(Kind::Span, tokens) {
                        Ok(o) => {
                            if let Some(p) = &o.propagate {
                                err = Some(syn::Error::new(p.span, "`propagate` has no meaning on a marker"));
                            } else if let Some(k) = &o.krate {
                                err = Some(syn::Error::new_spanned(k, "`crate` goes on the outer fn's attribute"));
                            } else {
                                found = Some(Marker::Span(Box::new(o), attr.pound_token.span));
                            }
                        }
                        Err(e) => err = Some(e),
                    }
                }
            }
            false
        });
        if let Some(e) = err {
            self.errors.push(e);
        }
        found
    }

    /// The statements that start a span for a marked closure call.
    fn span_start(&self, opts: &Options, span: Span, parent: Option<TokenStream>) -> TokenStream {
        let krate = self.krate;
        let name = match &opts.name {
            Some(n) => quote!(#n),
            None => {
                let n = format!("{}::{{closure}}", self.fn_name);
                quote!(#n)
            }
        };
        let start = span_start(krate, &name, span_options(opts), parent);
        let s = span_ident();
        let labels = label_stmts(krate, opts, &s);
        quote_spanned! {span=>
            #[allow(unused_mut)]
            let mut #s = #start;
            #(#labels)*
        }
    }

    fn rewrite_closure(&mut self, expr: &mut Expr) {
        let Expr::Closure(c) = expr else { unreachable!() };
        let marker = self.take_marker(&mut c.attrs);
        if c.asyncness.is_some() {
            if let Some(m) = marker {
                let span = match m {
                    Marker::Propagate => Span::call_site(),
                    Marker::Span(_, s) => s,
                };
                self.errors.push(syn::Error::new(
                    span,
                    "markers are not supported on async closures: mark the async block inside instead",
                ));
            }
            self.uses.push(false);
            syn::visit_mut::visit_expr_closure_mut(self, c);
            let used = self.uses.pop().unwrap_or(false);
            if used {
                self.mark_use();
            }
            return;
        }
        let is_move = c.capture.is_some();
        let propagate = marker.is_some()
            || match self.mode {
                Mode::All => true,
                Mode::MoveOnly => is_move,
                Mode::Off => false,
            };
        // A closure that names no local captures nothing: `move` changes nothing for it, and
        // keeps it `'static` (so `thread::spawn(|| work())` still compiles).
        let move_like = is_move || (propagate && !self.names_local(c));

        self.uses.push(false);
        syn::visit_mut::visit_expr_closure_mut(self, c);
        let inner_used = self.uses.pop().unwrap_or(false);

        let krate = self.krate;
        let ctx = ctx_ident();
        let guard = guard_ident();
        if !propagate {
            if is_move {
                if inner_used {
                    // Give the inner closures a binding of their own to borrow.
                    let inner = c.clone();
                    *expr = syn::parse_quote!({ let #ctx = #krate::Context::current(); #inner });
                }
            } else if inner_used {
                self.mark_use();
            }
            return;
        }
        let body = &c.body;
        let span_stmts = match &marker {
            Some(Marker::Span(opts, span)) => {
                let start = self.span_start(opts, *span, None);
                let s = span_ident();
                let rebind =
                    inner_used.then(|| quote!(let #ctx = #krate::__private::Instrumentation::__apm_context(&#s);));
                let sg = Ident::new("__apm_span_guard", Span::mixed_site());
                quote! { #start let #sg = #s.attach(); #rebind }
            }
            _ => TokenStream::new(),
        };
        let new_body: Expr = syn::parse_quote!({
            let #guard = #ctx.attach();
            #span_stmts
            #body
        });
        *c.body = new_body;
        if move_like {
            if c.capture.is_none() {
                c.capture = Some(syn::Token![move](Span::mixed_site()));
            }
            let inner = c.clone();
            *expr = syn::parse_quote!({ let #ctx = #krate::Context::current(); #inner });
        } else {
            // Borrows the enclosing binding (as do the closures nested in it, unless a span
            // marker rebound it): keeps capture modes, kind and lifetimes.
            self.mark_use();
        }
    }

    fn rewrite_async(&mut self, expr: &mut Expr) {
        let Expr::Async(a) = expr else { unreachable!() };
        let marker = self.take_marker(&mut a.attrs);
        let propagate = marker.is_some() || self.mode != Mode::Off;
        self.uses.push(false);
        syn::visit_mut::visit_expr_async_mut(self, a);
        let inner_used = self.uses.pop().unwrap_or(false);
        let krate = self.krate;
        let ctx = ctx_ident();
        if !propagate {
            if inner_used {
                if a.capture.is_some() {
                    let inner = a.clone();
                    *expr = syn::parse_quote!({ let #ctx = #krate::Context::current(); #inner });
                } else {
                    self.mark_use();
                }
            }
            return;
        }
        if inner_used {
            // Polled with the captured context attached: bind it for the closures inside.
            let stmts = &a.block.stmts;
            a.block = syn::parse_quote!({ let #ctx = #krate::Context::current(); #(#stmts)* });
        }
        let inner = a.clone();
        match marker {
            Some(Marker::Span(opts, span)) => {
                let p = Ident::new("__apm_parent", Span::mixed_site());
                let start = self.span_start(&opts, span, Some(quote!(#p)));
                let s = span_ident();
                *expr = syn::parse_quote!(#krate::__private::lazy_span(
                    #krate::Context::current(),
                    move |#p: &#krate::Context| { #start #s },
                    #inner,
                ));
            }
            _ => {
                *expr = syn::parse_quote!(#krate::Context::current().wrap_future(#inner));
            }
        }
    }

    /// Whether the closure's body names a local of the function (conservatively: any name that
    /// is bound anywhere in the function and is not one of the closure's own parameters).
    fn names_local(&self, c: &syn::ExprClosure) -> bool {
        let mut params = HashSet::new();
        for p in &c.inputs {
            collect_pat_bindings(p, &mut params);
        }
        let mut used = UsedNames::default();
        used.visit_expr(&c.body);
        used.names.iter().any(|n| self.bindings.contains(n) && !params.contains(n))
    }
}

/// The expression that starts a span: under an explicit `parent` (a reference to a `Context`),
/// or under the current context, where the thread's state is looked at before the builder is
/// made, so a span with no transaction or in an unsampled one builds nothing.
pub fn span_start(krate: &Path, name: &TokenStream, options: TokenStream, parent: Option<TokenStream>) -> TokenStream {
    let builder = span_builder(krate, name, options);
    match parent {
        Some(p) => quote!(#builder .child_of(#p) .start()),
        None => quote!(#krate::__private::span(|| #builder)),
    }
}

/// `Span::builder(<name>) <options>`
pub fn span_builder(krate: &Path, name: &TokenStream, options: TokenStream) -> TokenStream {
    quote!(#krate::Span::builder(#name) #options)
}

/// `.with_type(..).subtype(..).action(..)`, for the options given.
pub fn span_options(opts: &Options) -> TokenStream {
    let ty = opts.ty.as_ref().map(|t| quote!(.with_type(#t)));
    let subtype = opts.subtype.as_ref().map(|t| quote!(.subtype(#t)));
    let action = opts.action.as_ref().map(|t| quote!(.action(#t)));
    let exit = opts.exit.then(|| quote!(.exit()));
    quote!(#ty #subtype #action #exit)
}

/// One [`label_stmt`] per `labels(..)` entry.
pub fn label_stmts(krate: &Path, opts: &Options, target: &Ident) -> Vec<TokenStream> {
    opts.labels
        .iter()
        .map(|l| {
            let value = match l {
                Label::Arg(i) => quote!(#i),
                Label::Expr(_, e) => quote!(#e),
            };
            label_stmt(krate, target, &l.key(), &value)
        })
        .collect()
}

/// `span.set_label("key", <value via autoref dispatch>);`, evaluated only when the span or
/// transaction records (arguments are not even formatted for a no-op span).
pub fn label_stmt(krate: &Path, target: &Ident, key: &str, value: &TokenStream) -> TokenStream {
    quote! {
        if #krate::__private::records(&#target) {
            #[allow(unused_imports)]
            use #krate::__private::{LabelViaNative as _, LabelViaDisplay as _, LabelViaDebug as _};
            #krate::__private::label(
                &mut #target,
                #key,
                (&&&#krate::__private::LabelOf(&(#value))).__apm_label_value(),
            );
        }
    }
}

impl Rewriter<'_> {
    /// A closure that must stay capture-free because it becomes a fn pointer
    /// (`let f: fn(u8) -> u8 = |x| x;`, `(|x| x) as fn(u8) -> u8`): visit its body only.
    fn visit_fn_pointer_closure(&mut self, expr: &mut Expr) {
        match expr {
            Expr::Closure(c) => syn::visit_mut::visit_expr_closure_mut(self, c),
            Expr::Paren(p) => self.visit_fn_pointer_closure(&mut p.expr),
            other => self.visit_expr_mut(other),
        }
    }
}

fn is_fn_pointer(ty: &syn::Type) -> bool {
    match ty {
        syn::Type::BareFn(_) => true,
        syn::Type::Paren(p) => is_fn_pointer(&p.elem),
        syn::Type::Group(g) => is_fn_pointer(&g.elem),
        _ => false,
    }
}

impl VisitMut for Rewriter<'_> {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            Expr::Closure(_) => self.rewrite_closure(expr),
            Expr::Async(_) => self.rewrite_async(expr),
            Expr::Cast(c) if is_fn_pointer(&c.ty) => self.visit_fn_pointer_closure(&mut c.expr),
            _ => syn::visit_mut::visit_expr_mut(self, expr),
        }
    }

    fn visit_local_mut(&mut self, local: &mut syn::Local) {
        if let (syn::Pat::Type(pt), Some(init)) = (&local.pat, &mut local.init) {
            if is_fn_pointer(&pt.ty) {
                self.visit_fn_pointer_closure(&mut init.expr);
                if let Some((_, diverge)) = &mut init.diverge {
                    self.visit_expr_mut(diverge);
                }
                return;
            }
        }
        syn::visit_mut::visit_local_mut(self, local);
    }

    fn visit_item_mut(&mut self, item: &mut Item) {
        // Nested items are not part of this fn's body: don't rewrite them. A marker inside one
        // that carries no macro of its own cannot be reached: report it.
        if let Item::Fn(f) = item {
            if f.attrs.iter().any(|a| marker_kind(a).is_some()) {
                return;
            }
        }
        let mut finder = MarkerFinder::default();
        finder.visit_item(item);
        for span in finder.found {
            self.errors.push(syn::Error::new(
                span,
                "this marker is inside a nested item that no #[transaction], #[span] or #[propagate] \
                 covers: put #[propagate] on that fn",
            ));
        }
    }

    fn visit_macro_mut(&mut self, mac: &mut syn::Macro) {
        if let Some(span) = find_marker_tokens(mac.tokens.clone()) {
            self.errors.push(syn::Error::new(
                span,
                "a #[propagate]/#[span] marker inside another macro's tokens can't be reached by the \
                 outer macro: move the closure or async block out of the macro call",
            ));
        }
    }
}

/// Finds `# [propagate` / `# [span` in a token stream (a macro's input), returning the span of the `#`.
pub fn find_marker_tokens(tokens: TokenStream) -> Option<Span> {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    for (i, tt) in trees.iter().enumerate() {
        match tt {
            TokenTree::Punct(p) if p.as_char() == '#' => {
                if let Some(TokenTree::Group(g)) = trees.get(i + 1) {
                    if g.delimiter() == proc_macro2::Delimiter::Bracket {
                        let inner: Vec<TokenTree> = g.stream().into_iter().collect();
                        // Path may be `span`, `apm_runtime::span`, …: look at the last ident before
                        // any argument group.
                        let last_ident = inner
                            .iter()
                            .take_while(|t| !matches!(t, TokenTree::Group(_)))
                            .filter_map(|t| match t {
                                TokenTree::Ident(i) => Some(i.to_string()),
                                _ => None,
                            })
                            .last();
                        if matches!(last_ident.as_deref(), Some("propagate" | "span")) {
                            return Some(p.span());
                        }
                    }
                }
            }
            TokenTree::Group(g) => {
                if let Some(s) = find_marker_tokens(g.stream()) {
                    return Some(s);
                }
            }
            _ => {}
        }
    }
    None
}

/// Markers on closures and async blocks (for the error on unreachable ones).
#[derive(Default)]
pub struct MarkerFinder {
    pub found: Vec<Span>,
}

impl<'ast> Visit<'ast> for MarkerFinder {
    fn visit_expr_closure(&mut self, c: &'ast syn::ExprClosure) {
        for a in &c.attrs {
            if matches!(marker_kind(a), Some(Kind::Propagate | Kind::Span)) {
                self.found.push(a.pound_token.span);
            }
        }
        syn::visit::visit_expr_closure(self, c);
    }
    fn visit_expr_async(&mut self, e: &'ast syn::ExprAsync) {
        for a in &e.attrs {
            if matches!(marker_kind(a), Some(Kind::Propagate | Kind::Span)) {
                self.found.push(a.pound_token.span);
            }
        }
        syn::visit::visit_expr_async(self, e);
    }
    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        if f.attrs.iter().any(|a| marker_kind(a).is_some()) {
            return;
        }
        syn::visit::visit_item_fn(self, f);
    }
    fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
        if f.attrs.iter().any(|a| marker_kind(a).is_some()) {
            return;
        }
        syn::visit::visit_impl_item_fn(self, f);
    }
    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        if let Some(s) = find_marker_tokens(m.tokens.clone()) {
            self.found.push(s);
        }
    }
}

/// Names bound by a pattern.
pub fn collect_pat_bindings(pat: &Pat, out: &mut HashSet<String>) {
    struct B<'a>(&'a mut HashSet<String>);
    impl<'ast> Visit<'ast> for B<'_> {
        fn visit_pat_ident(&mut self, p: &'ast syn::PatIdent) {
            self.0.insert(p.ident.to_string());
            syn::visit::visit_pat_ident(self, p);
        }
    }
    B(out).visit_pat(pat);
}

/// Every name bound in a fn body (not descending into nested items).
#[derive(Default)]
pub struct Bindings {
    pub names: HashSet<String>,
}

impl<'ast> Visit<'ast> for Bindings {
    fn visit_pat_ident(&mut self, p: &'ast syn::PatIdent) {
        self.names.insert(p.ident.to_string());
        syn::visit::visit_pat_ident(self, p);
    }
    fn visit_item(&mut self, _: &'ast Item) {}
}

/// Single-segment paths and identifiers (also inside macro tokens and format strings) used in
/// an expression.
#[derive(Default)]
struct UsedNames {
    names: HashSet<String>,
}

impl UsedNames {
    fn tokens(&mut self, ts: TokenStream) {
        for tt in ts {
            match tt {
                TokenTree::Ident(i) => {
                    self.names.insert(i.to_string());
                }
                TokenTree::Group(g) => self.tokens(g.stream()),
                TokenTree::Literal(l) => {
                    // Inline format arguments: `"{name}"`. Take every word of the literal.
                    let s = l.to_string();
                    for word in s.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
                        if !word.is_empty() {
                            self.names.insert(word.to_string());
                        }
                    }
                }
                TokenTree::Punct(_) => {}
            }
        }
    }
}

impl<'ast> Visit<'ast> for UsedNames {
    fn visit_path(&mut self, p: &'ast syn::Path) {
        if p.leading_colon.is_none() {
            if let Some(first) = p.segments.first() {
                self.names.insert(first.ident.to_string());
            }
        }
        syn::visit::visit_path(self, p);
    }
    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        self.tokens(m.tokens.clone());
    }
    fn visit_item(&mut self, _: &'ast Item) {}
}
