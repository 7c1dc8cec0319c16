//! Parsing of the attribute arguments: `name = "..."`, `type = "..."`, `labels(...)`, ….

use proc_macro2::TokenStream;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{Expr, ExprLit, Ident, Lit, LitBool, LitStr, Path, Token};

/// Which macro is being expanded (or which marker is being read).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Transaction,
    Span,
    Propagate,
}

impl Kind {
    pub fn attr(self) -> &'static str {
        match self {
            Kind::Transaction => "#[transaction]",
            Kind::Span => "#[span]",
            Kind::Propagate => "#[propagate]",
        }
    }
}

/// One `labels(...)` entry.
pub enum Label {
    /// `labels(user_id)`: a function argument, recorded under its own name.
    Arg(Ident),
    /// `labels(region = cfg.region)`: an expression, recorded under `key`.
    Expr(Ident, Box<Expr>),
}

impl Label {
    pub fn key(&self) -> String {
        match self {
            Label::Arg(i) | Label::Expr(i, _) => i.unraw().to_string(),
        }
    }
}

#[derive(Default)]
pub struct Options {
    pub name: Option<LitStr>,
    pub ty: Option<LitStr>,
    pub subtype: Option<LitStr>,
    pub action: Option<LitStr>,
    pub traceparent: Option<Expr>,
    pub labels: Vec<Label>,
    pub propagate: Option<LitBool>,
    pub krate: Option<Path>,
    /// `exit`: the span is an exit span (a leaf; see `SpanBuilder::exit`).
    pub exit: bool,
}

const SPAN_OPTIONS: &str = "name, type, subtype, action, exit, labels, propagate, crate";
const TX_OPTIONS: &str = "name, type, traceparent, labels, propagate, crate";

impl Options {
    pub fn parse(kind: Kind, tokens: TokenStream) -> syn::Result<Options> {
        let parser = |input: ParseStream| Options::parse_inner(kind, input);
        parser.parse2(tokens)
    }

    fn parse_inner(kind: Kind, input: ParseStream) -> syn::Result<Options> {
        let mut opts = Options::default();
        let mut seen: Vec<String> = Vec::new();
        if kind != Kind::Propagate && input.peek(LitStr) {
            // `#[span("load")]`: the name, as tracing's and most attribute macros spell it.
            opts.name = Some(input.parse()?);
            seen.push("name".to_string());
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        while !input.is_empty() {
            if input.peek(Lit) {
                let lit: Lit = input.parse()?;
                let msg = match (&lit, kind) {
                    (_, Kind::Propagate) => "#[propagate] takes no options except `crate = path`".to_string(),
                    (Lit::Str(_), _) => format!(
                        "a bare string names the {what} only as the first argument; write `name = \"...\"`",
                        what = if kind == Kind::Transaction { "transaction" } else { "span" }
                    ),
                    _ => "expected `name = \"...\"` or another option; the name is a string literal".to_string(),
                };
                return Err(syn::Error::new(lit.span(), msg));
            }
            let key = input.call(Ident::parse_any)?;
            let key_str = key.to_string();
            let known = match kind {
                Kind::Span => SPAN_OPTIONS,
                Kind::Transaction => TX_OPTIONS,
                Kind::Propagate => "crate",
            };
            if !known.split(", ").any(|k| k == key_str) {
                let msg = match (kind, key_str.as_str()) {
                    (Kind::Span, "traceparent") => {
                        "`traceparent` is only valid on #[transaction]: a span continues the current trace".to_string()
                    }
                    (Kind::Transaction, "subtype" | "action") => {
                        format!("`{key_str}` is only valid on #[span]; a transaction has a name and a type")
                    }
                    (Kind::Propagate, _) => {
                        format!("unknown option `{key_str}`: #[propagate] takes no options except `crate = path`")
                    }
                    _ if !input.peek(Token![=]) && !input.peek(syn::token::Paren) => format!(
                        "unknown option `{key_str}` for {}; to name it, write `name = \"{key_str}\"` (or `\"{key_str}\"` first); the options are: {known}",
                        kind.attr()
                    ),
                    _ => format!("unknown option `{key_str}` for {}; expected one of: {known}", kind.attr()),
                };
                return Err(syn::Error::new(key.span(), msg));
            }
            if seen.contains(&key_str) {
                return Err(syn::Error::new(key.span(), format!("duplicate option `{key_str}`")));
            }
            seen.push(key_str.clone());
            match key_str.as_str() {
                "name" | "type" | "subtype" | "action" => {
                    if !input.peek(Token![=]) {
                        return Err(syn::Error::new(
                            key.span(),
                            format!("`{key_str}` takes a string: write `{key_str} = \"...\"`"),
                        ));
                    }
                    input.parse::<Token![=]>()?;
                    let value: Expr = input.parse()?;
                    let lit = match value {
                        Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) => s,
                        other => {
                            return Err(syn::Error::new_spanned(
                                other,
                                format!("`{key_str}` must be a string literal, like `{key_str} = \"...\"`"),
                            ))
                        }
                    };
                    let slot = match key_str.as_str() {
                        "name" => &mut opts.name,
                        "type" => &mut opts.ty,
                        "subtype" => &mut opts.subtype,
                        _ => &mut opts.action,
                    };
                    *slot = Some(lit);
                }
                "exit" => {
                    if input.peek(Token![=]) {
                        return Err(syn::Error::new(key.span(), "`exit` is a flag: write `exit`, with no value"));
                    }
                    opts.exit = true;
                }
                "traceparent" => {
                    input.parse::<Token![=]>()?;
                    opts.traceparent = Some(input.parse()?);
                }
                "propagate" => {
                    input.parse::<Token![=]>()?;
                    let value: Expr = input.parse()?;
                    match value {
                        Expr::Lit(ExprLit { lit: Lit::Bool(b), .. }) => opts.propagate = Some(b),
                        other => return Err(syn::Error::new_spanned(other, "`propagate` must be `true` or `false`")),
                    }
                }
                "crate" => {
                    input.parse::<Token![=]>()?;
                    opts.krate = Some(input.call(Path::parse_mod_style)?);
                }
                "labels" => {
                    let content;
                    syn::parenthesized!(content in input);
                    let mut keys: Vec<String> = Vec::new();
                    while !content.is_empty() {
                        let key = content.call(Ident::parse_any)?;
                        let label = if content.peek(Token![=]) {
                            content.parse::<Token![=]>()?;
                            Label::Expr(key.clone(), Box::new(content.parse()?))
                        } else {
                            Label::Arg(key.clone())
                        };
                        if keys.contains(&label.key()) {
                            return Err(syn::Error::new(key.span(), format!("duplicate label `{}`", label.key())));
                        }
                        keys.push(label.key());
                        opts.labels.push(label);
                        if content.is_empty() {
                            break;
                        }
                        content.parse::<Token![,]>()?;
                    }
                }
                _ => unreachable!("checked against the known options"),
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(opts)
    }
}
