//! Stack traces in both of their states: the raw instruction pointers an application thread
//! captures (cheap: no symbol is looked up there) and the frames the reporter resolves them into
//! for the intake (`exception.stacktrace`, a span's `stacktrace`).

use serde::Serialize;

/// Return addresses of a stack, innermost first, as captured: the capture machinery's own frames
/// are still on top (the reporter cuts them once it knows their names).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RawStack {
    pub(crate) ips: Vec<usize>,
    /// How many frames to send once the machinery is cut: `STACK_TRACE_LIMIT` when captured
    /// (`usize::MAX` for -1).
    pub(crate) limit: usize,
}

/// One frame as the intake wants it. `filename` or `classname` must be present: a frame without
/// debug info has no file, and sends its module path as `classname`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Frame {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) function: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) module: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) filename: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) classname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) abs_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) lineno: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) colno: Option<u32>,
    pub(crate) library_frame: bool,
}

impl Frame {
    /// Elastic's culprit for this frame: `module::function (file:line)`.
    pub(crate) fn culprit(&self) -> String {
        let mut out = match (&self.module, &self.function) {
            (Some(m), Some(f)) => format!("{m}::{f}"),
            (None, Some(f)) => f.clone(),
            (Some(m), None) => m.clone(),
            (None, None) => String::from("<unknown>"),
        };
        if let Some(file) = &self.filename {
            out.push_str(&format!(" ({file}"));
            if let Some(line) = self.lineno {
                out.push_str(&format!(":{line}"));
            }
            out.push(')');
        }
        out
    }

    /// `file:line` for the waterfall, or the function where no file is known.
    pub(crate) fn location(&self) -> String {
        match (&self.filename, self.lineno) {
            (Some(f), Some(l)) => format!("{f}:{l}"),
            (Some(f), None) => f.clone(),
            _ => self.culprit(),
        }
    }
}

/// A demangled function path as Kibana should show it: generic arguments given by turbofish
/// (`lang_start::<()>`) dropped, and a closure named with the function it is in
/// (`orders::load::{{closure}}` → module `orders`, function `load::{{closure}}`).
pub(crate) fn function_path(path: &str) -> (Option<String>, String) {
    let mut clean = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(i) = rest.find("::<") {
        clean.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        // Skip the bracketed arguments, nested ones and `->` included.
        let bytes = after.as_bytes();
        let (mut depth, mut end) = (0i32, after.len());
        for (j, &b) in bytes.iter().enumerate() {
            match b {
                b'<' => depth += 1,
                b'>' if j > 0 && bytes[j - 1] == b'-' => {}
                b'>' => {
                    depth -= 1;
                    if depth == 0 {
                        end = j + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    clean.push_str(rest);
    let (module, function) = split_path(&clean);
    let (mut module, mut function) = (module.map(str::to_string), function.to_string());
    while function.starts_with('{') {
        let Some(m) = module.take() else { break };
        let (parent, last) = split_path(&m);
        function = format!("{last}::{function}");
        module = parent.map(str::to_string);
    }
    (module, function)
}

/// Splits a demangled Rust path into module and item at the last `::` outside `<…>`:
/// `my_app::orders::load` → (`my_app::orders`, `load`); `<my_app::Foo as core::fmt::Display>::fmt`
/// → (`my_app`, `<Foo as Display>::fmt` is not attempted: the item keeps its full text).
pub(crate) fn split_path(path: &str) -> (Option<&str>, &str) {
    let mut depth = 0i32;
    let bytes = path.as_bytes();
    let mut split = None;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'<' => depth += 1,
            // `fn() -> T` is no closing bracket.
            b'>' if i > 0 && bytes[i - 1] == b'-' => {}
            b'>' => depth -= 1,
            b':' if depth == 0 && bytes.get(i + 1) == Some(&b':') => {
                split = Some(i);
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    match split {
        Some(i) if i > 0 && !path.starts_with('<') => (Some(&path[..i]), &path[i + 2..]),
        Some(i) if i > 0 => {
            // `<Type as Trait>::method`: the module is the type's, or the trait's when the type
            // is no path (`<fn() -> T as FnOnce<()>>::call_once`).
            let inner = &path[1..i];
            let (ty, tr) = inner.split_once(" as ").unwrap_or((inner, ""));
            let module = type_module(ty).or_else(|| type_module(tr.trim_end_matches('>')));
            (module, path)
        }
        _ => (None, path),
    }
}

/// The module of a type name as `std::any::type_name` writes it: `core::num::error` for
/// `core::num::error::ParseIntError`, `my_app` for `my_app::Error<alloc::string::String>`.
pub(crate) fn type_module(type_name: &str) -> Option<&str> {
    let outer = type_name.split('<').next().unwrap_or(type_name);
    let unnamed = ["&", "*", "(", "[", "dyn ", "fn(", "fn (", "unsafe ", "extern ", "impl "];
    if unnamed.iter().any(|p| outer.starts_with(p)) {
        return None;
    }
    split_path(outer).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_module_and_item() {
        assert_eq!(split_path("my_app::orders::load"), (Some("my_app::orders"), "load"));
        assert_eq!(split_path("main"), (None, "main"));
        assert_eq!(split_path("my_app::Cache<K,V>::get"), (Some("my_app::Cache<K,V>"), "get"));
        assert_eq!(
            split_path("<my_app::Foo as core::fmt::Display>::fmt"),
            (Some("my_app"), "<my_app::Foo as core::fmt::Display>::fmt")
        );
        assert_eq!(type_module("core::num::error::ParseIntError"), Some("core::num::error"));
        assert_eq!(type_module("my_app::Error<alloc::string::String>"), Some("my_app"));
        assert_eq!(type_module("dyn core::error::Error + Send + Sync"), None);
        assert_eq!(type_module("str"), None);
        assert_eq!(
            split_path("<fn() -> core::result::Result<(), alloc::string::String> as core::ops::function::FnOnce<()>>::call_once"),
            (
                Some("core::ops::function"),
                "<fn() -> core::result::Result<(), alloc::string::String> as core::ops::function::FnOnce<()>>::call_once"
            )
        );
        let owned = |(m, f): (Option<&str>, &str)| (m.map(str::to_string), f.to_string());
        assert_eq!(
            function_path("std::rt::lang_start::<()>::{closure#0}"),
            owned((Some("std::rt"), "lang_start::{closure#0}"))
        );
        assert_eq!(
            function_path("errors::find_order::{{closure}}"),
            owned((Some("errors"), "find_order::{{closure}}"))
        );
        assert_eq!(
            function_path("test::__rust_begin_short_backtrace::<core::result::Result<(), alloc::string::String>, fn() -> core::result::Result<(), alloc::string::String>>"),
            owned((Some("test"), "__rust_begin_short_backtrace"))
        );
        assert_eq!(function_path("main"), owned((None, "main")));
    }

    #[test]
    fn culprits_name_module_function_and_place() {
        let f = Frame {
            function: Some("load".into()),
            module: Some("my_app::orders".into()),
            filename: Some("src/orders.rs".into()),
            lineno: Some(42),
            ..Frame::default()
        };
        assert_eq!(f.culprit(), "my_app::orders::load (src/orders.rs:42)");
        assert_eq!(f.location(), "src/orders.rs:42");
    }
}
