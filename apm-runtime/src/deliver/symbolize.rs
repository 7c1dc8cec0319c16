//! Turning captured return addresses into frames, on the reporter thread: function, module, file
//! and line from the binary's debug info (or, without it, the function from its symbol table),
//! whether the frame is the application's or a library's, and the error's culprit. Addresses
//! recur (the same error from the same place), so each one is resolved once and cached.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::model::event::{ErrorEvent, Event};
use crate::model::stacktrace::{function_path, Frame, RawStack};

/// Addresses kept resolved; past this the cache starts over (a process that keeps meeting new
/// addresses is not one whose old ones will come back).
const CACHE_LIMIT: usize = 65_536;

/// The reporter's resolver and its cache.
pub(crate) struct Symbolizer {
    cache: HashMap<usize, Arc<[Frame]>>,
    /// Files under it are the application's, named relative to it.
    cwd: Option<String>,
    /// Where cargo keeps registry and git sources (`$CARGO_HOME`, else `~/.cargo`).
    cargo_home: Option<String>,
}

impl Symbolizer {
    pub(crate) fn new() -> Symbolizer {
        let cwd = std::env::current_dir().ok().map(|d| with_slash(d.to_string_lossy().into_owned()));
        let cargo_home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
            .map(|d| with_slash(d.to_string_lossy().into_owned()));
        Symbolizer { cache: HashMap::new(), cwd, cargo_home }
    }

    /// Resolves what the events of a batch captured, before any sink sees them.
    pub(crate) fn resolve_batch(&mut self, batch: &mut [Event]) {
        for event in batch {
            match event {
                Event::Error(error) => self.resolve_error(error),
                Event::Span(span) => {
                    if let Some(more) = span.more.as_deref_mut() {
                        if let Some(stack) = more.stack.take() {
                            more.frames = self.frames(&stack);
                        }
                    }
                }
                Event::Transaction(_) | Event::Metricset(_) => {}
            }
        }
    }

    /// Fills an error's frames from its stack and, when no culprit was given (a panic gives its
    /// location), makes the top application frame its culprit.
    pub(crate) fn resolve_error(&mut self, error: &mut ErrorEvent) {
        let Some(stack) = error.stack.take() else { return };
        error.frames = self.frames(&stack);
        if error.culprit.is_none() {
            error.culprit = error.frames.iter().find(|f| !f.library_frame).map(Frame::culprit);
        }
    }

    /// The frames of `stack`, innermost first: the capture machinery's frames cut from the top,
    /// at most `stack.limit` of them.
    pub(crate) fn frames(&mut self, stack: &RawStack) -> Vec<Frame> {
        if self.cache.len() > CACHE_LIMIT {
            self.cache.clear();
        }
        let mut frames = Vec::with_capacity(stack.ips.len());
        for &ip in &stack.ips {
            let resolved = match self.cache.get(&ip) {
                Some(frames) => frames.clone(),
                None => {
                    let resolved: Arc<[Frame]> = self.resolve(ip).into();
                    self.cache.insert(ip, resolved.clone());
                    resolved
                }
            };
            frames.extend(resolved.iter().cloned());
        }
        // The machinery on top may call through the standard library (an `Option::or_else`,
        // a boxed hook's `call`): cut up to the last machinery frame of the leading run of
        // machinery and standard-library frames.
        let run = frames.iter().take_while(|f| is_machinery(f) || is_std_frame(f)).count();
        let machinery = frames[..run].iter().rposition(is_machinery).map_or(0, |i| i + 1);
        frames.drain(..machinery);
        frames.truncate(stack.limit);
        frames
    }

    /// One address's frames: more than one where calls were inlined into it (innermost first,
    /// as the debug info lists them).
    fn resolve(&self, ip: usize) -> Vec<Frame> {
        let mut out = Vec::new();
        backtrace::resolve(ip as *mut std::ffi::c_void, |symbol| {
            let path = symbol.name().map(|name| format!("{name:#}"));
            let (module, function) = match &path {
                Some(path) => {
                    let (module, function) = function_path(path);
                    (module, Some(function))
                }
                None => (None, None),
            };
            let abs_path = symbol.filename().map(|f| f.to_string_lossy().into_owned());
            // Not Rust (glibc's `./nptl/pthread_create.c`, a symbol with no path such as
            // `__rust_try` or `start_thread`): never the application's own code.
            let (filename, library_frame) = match &abs_path {
                Some(abs) => (Some(self.relative(abs)), self.is_library_file(abs) || !abs.ends_with(".rs")),
                None => (None, module.is_none() || is_std(module.as_deref().or(function.as_deref()))),
            };
            // The agent is never the application's code, wherever its sources are (a path or
            // git dependency, or this workspace).
            let library_frame = library_frame || module.as_deref().is_some_and(is_agent);
            // The intake wants a file or a class: a frame without debug info names its module.
            let classname = if filename.is_none() { module.clone().or_else(|| Some("<unknown>".into())) } else { None };
            out.push(Frame {
                function,
                module,
                filename,
                classname,
                abs_path,
                lineno: symbol.lineno(),
                colno: symbol.colno(),
                library_frame,
            });
        });
        if out.is_empty() {
            out.push(Frame { classname: Some(format!("{ip:#x}")), library_frame: true, ..Frame::default() });
        }
        out
    }

    /// The name Kibana shows: relative to the working directory for the application's files,
    /// `crate-1.2.3/src/…` for registry crates, `library/std/src/…` for the standard library.
    fn relative(&self, abs: &str) -> String {
        if let Some(rest) = self.cwd.as_deref().and_then(|cwd| abs.strip_prefix(cwd)) {
            return rest.to_string();
        }
        for marker in ["/registry/src/", "/git/checkouts/"] {
            if let Some(i) = abs.find(marker) {
                // Past the index (or repository) directory, and for git the revision's too.
                let rest = &abs[i + marker.len()..];
                let skip = if marker == "/git/checkouts/" { 2 } else { 1 };
                return rest.splitn(skip + 1, '/').nth(skip).unwrap_or(rest).to_string();
            }
        }
        if let Some(rest) = abs.strip_prefix("/rustc/") {
            return rest.split_once('/').map_or(rest, |(_, r)| r).to_string();
        }
        if !abs.starts_with('/') {
            return abs.to_string();
        }
        // Built elsewhere (a CI runner's checkout): from the crate's `src/` on.
        match abs.rfind("/src/") {
            Some(i) => abs[i + 1..].to_string(),
            None => abs.rsplit('/').next().unwrap_or(abs).to_string(),
        }
    }

    /// Library code: the standard library's sources, crates from a registry or a git checkout.
    fn is_library_file(&self, abs: &str) -> bool {
        abs.starts_with("/rustc/")
            || abs.contains("/rustlib/src/rust/")
            || abs.contains("/.cargo/registry/")
            || abs.contains("/.cargo/git/")
            || self.cargo_home.as_deref().is_some_and(|home| abs.starts_with(home))
    }
}

fn with_slash(mut dir: String) -> String {
    if !dir.ends_with('/') {
        dir.push('/');
    }
    dir
}

/// Without a file to tell, only the standard library's crates are known to be libraries.
fn is_std(path: Option<&str>) -> bool {
    let Some(path) = path else { return true };
    let path = path.trim_start_matches('<');
    ["std::", "core::", "alloc::", "proc_macro::", "test::"].iter().any(|c| path.starts_with(c))
}

/// This agent's own crates.
fn is_agent(module: &str) -> bool {
    let module = module.trim_start_matches('<');
    ["apm_runtime", "apm_macros"]
        .iter()
        .any(|c| module.strip_prefix(c).is_some_and(|r| r.is_empty() || r.starts_with("::")))
}

/// A frame of the standard library (by its file, or its path without one).
fn is_std_frame(frame: &Frame) -> bool {
    match &frame.abs_path {
        Some(abs) => abs.starts_with("/rustc/") || abs.contains("/rustlib/src/rust/"),
        None => is_std(frame.module.as_deref().or(frame.function.as_deref())),
    }
}

/// The frames a capture has on top of the code that asked for it: the unwinder, this agent,
/// and for a panic the standard library's panic machinery and the boxed hook's call.
fn is_machinery(frame: &Frame) -> bool {
    let name = match (&frame.module, &frame.function) {
        (Some(m), Some(f)) => format!("{m}::{f}"),
        (None, Some(f)) => f.clone(),
        // Nothing known: an unwinder frame without symbols.
        _ => return true,
    };
    const PREFIXES: &[&str] = &[
        "backtrace::",
        "<backtrace::",
        "_Unwind_",
        "apm_runtime::",
        "<apm_runtime::",
        "std::panicking::",
        "core::panicking::",
        "std::sys::backtrace::",
        "std::backtrace_rs::",
        "rust_begin_unwind",
        "__rustc::rust_begin_unwind",
    ];
    PREFIXES.iter().any(|p| name.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn symbolizer() -> Symbolizer {
        Symbolizer { cache: HashMap::new(), cwd: Some("/work/app/".into()), cargo_home: Some("/home/u/.cargo/".into()) }
    }

    #[test]
    fn files_are_named_as_kibana_shows_them() {
        let s = symbolizer();
        assert_eq!(s.relative("/work/app/src/orders.rs"), "src/orders.rs");
        assert_eq!(
            s.relative("/home/u/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tokio-1.48.0/src/runtime/mod.rs"),
            "tokio-1.48.0/src/runtime/mod.rs"
        );
        assert_eq!(s.relative("/home/u/.cargo/git/checkouts/hyper-abc/1a2b3c4/src/lib.rs"), "src/lib.rs");
        assert_eq!(
            s.relative("/rustc/29483883eed69d5fb4db01964cdf2af4d86e9cb2/library/std/src/rt.rs"),
            "library/std/src/rt.rs"
        );
        assert_eq!(s.relative("/build/other/crates/app/src/main.rs"), "src/main.rs");
        assert_eq!(s.relative("tests/errors.rs"), "tests/errors.rs");
        assert!(s.is_library_file("/rustc/abc/library/core/src/ops/function.rs"));
        assert!(s.is_library_file("/home/u/.cargo/registry/src/x/rayon-1.12.0/src/lib.rs"));
        assert!(!s.is_library_file("/work/app/src/orders.rs"));
    }

    #[test]
    fn the_capture_machinery_is_recognised() {
        let frame = |m: &str, f: &str| Frame { module: Some(m.into()), function: Some(f.into()), ..Frame::default() };
        assert!(is_machinery(&frame("backtrace::backtrace::libunwind", "trace")));
        assert!(is_machinery(&frame("apm_runtime::record::error", "submit")));
        assert!(is_machinery(&frame("std::panicking", "rust_panic_with_hook")));
        assert!(!is_machinery(&frame("my_app::orders", "load")));
        assert!(!is_machinery(&frame("std::thread", "spawn")), "std below the application is kept");
        assert!(is_std(Some("core::ops::function::FnOnce::call_once")));
        assert!(!is_std(Some("my_app::main")));
    }

    #[inline(never)]
    fn known_caller() -> RawStack {
        crate::record::stack::capture(50).unwrap()
    }

    #[test]
    fn a_captured_stack_resolves_to_this_function_with_its_file_and_line() {
        let stack = known_caller();
        let mut s = Symbolizer::new();
        // This module is the agent's own, so `frames` would cut it as machinery: look uncut.
        let all: Vec<Frame> = stack.ips.iter().flat_map(|&ip| s.resolve(ip)).collect();
        let caller = all.iter().find(|f| f.function.as_deref() == Some("known_caller")).expect("{all:#?}");
        assert_eq!(caller.module.as_deref(), Some("apm_runtime::deliver::symbolize::tests"));
        assert!(caller.filename.as_deref().is_some_and(|f| f.ends_with("src/deliver/symbolize.rs")), "{caller:?}");
        assert!(caller.lineno.is_some());
        assert!(caller.library_frame, "the agent's own frames are never the application's");
        assert!(all.iter().any(|f| f.library_frame), "std's frames are below: {all:#?}");
        // Cut and cached: the test harness's frames, the same answer twice.
        let frames = s.frames(&stack);
        assert!(frames[0].module.as_deref().is_some_and(|m| !m.starts_with("apm_runtime")), "{frames:#?}");
        assert_eq!(s.frames(&stack), frames);
    }
}
