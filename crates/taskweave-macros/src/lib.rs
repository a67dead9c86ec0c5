//! The `#[taskweave::main]` and `#[taskweave::test]` attributes: asyncio's
//! `asyncio.run(main(), debug=...)` written as an attribute on an `async fn`.
//!
//! They are re-exported by the `taskweave` facade and expand to code that names `::taskweave`,
//! so they are meant to be used through it, not on their own. The expansion first lets a process
//! pool worker take over (a worker is this same executable started again, and must not run the
//! program's `main`), then builds a [`Runtime`](../taskweave/struct.Runtime.html) with the
//! options given and runs the body on it: as the task "main" (`run_task`) when the body's future
//! is `Send` and the function takes no parameters, else on the calling thread (`run`), which
//! takes any future.
//!
//! Options: `debug` (debug mode on), `current_thread`, `worker_threads = N`, `on_interrupt = off`
//! (leave Ctrl-C to the program).
//!
//! The parser works on plain token trees (no `syn`): it removes the `async` keyword from the
//! signature and wraps the body, which is all the attribute needs.

use proc_macro::{Delimiter, Group, Span, TokenStream, TokenTree};

mod remote;

/// Runs an `async fn main` on a taskweave runtime (asyncio's `asyncio.run(main())`).
///
/// Before anything else it hands control to the process-pool worker loop when this process was
/// started as a worker, so pools work without an explicit `become_worker_if_spawned()` call.
///
/// Options: `#[taskweave::main(debug)]`, `#[taskweave::main(current_thread)]`,
/// `#[taskweave::main(worker_threads = 4)]`, `#[taskweave::main(on_interrupt = off)]`,
/// combinable with commas.
///
/// A body whose future is `Send` runs as a task named "main", as asyncio runs its main coroutine
/// (each await of a task then costs what it costs inside a task); a body that holds something
/// not `Send` (an `Rc`) across an await runs on the calling thread, as `run` runs it. The choice
/// is made at compile time and changes nothing else.
///
/// Ctrl-C behaves as under `run`: the first SIGINT cancels the body (its destructors run, the
/// leftover tasks are cancelled, pools it owns shut down) and the program exits with status 130;
/// a second one exits at once. `on_interrupt = off` installs no handler, for a program that
/// handles SIGINT itself (`OnInterrupt::Off`).
///
/// # Panics
///
/// The generated `main` panics, with the error's text, if the runtime cannot be built or the body
/// panics, as `#[tokio::main]` does.
///
/// # Examples
///
/// (Compiled and run as a doctest of the `taskweave` facade, which this crate cannot depend on.)
///
/// ```text
/// #[taskweave::main(debug)]
/// async fn main() {
///     let t = taskweave::create_task(async { 42 });
///     println!("{}", t.await.unwrap());
/// }
/// ```
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(args, item, false)
}

/// Runs an `async fn` test on a fresh taskweave runtime (current-thread unless
/// `worker_threads = N` is given).
///
/// # Examples
///
/// (Compiled and run in the `taskweave` facade's tests.)
///
/// ```text
/// #[taskweave::test]
/// async fn answers() {
///     assert_eq!(taskweave::create_task(async { 1 }).await.unwrap(), 1);
/// }
/// ```
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(args, item, true)
}

/// Registers a plain `fn(A) -> R` as a remote function: other builds and machines (the NATS
/// executor's workers) can call it by name. The function itself is unchanged; an entry
/// `{name, signature, trampoline}` is added to the link-time table of `taskweave-registry`.
///
/// The argument and result travel postcard-encoded, so `A` and `R` must be `Serialize +
/// DeserializeOwned`. The function must be a free, non-generic, non-`async` function with one
/// argument (a tuple for several) or none: a `fn() -> R` travels with `()` as its argument, so
/// callers by name see it as `fn(()) -> R`, and it is what `run_in_executor` runs on the NATS
/// executor.
///
/// The function is marked `#[inline(never)]`: the registry finds it by its address, which an
/// inlined copy would not share, so it must not carry an `#[inline]` attribute of its own.
///
/// Options: `name = "app::square"` (default: the module path and the function name),
/// `crate = path` (where the registry crate is; default `::taskweave::registry`, the facade's).
///
/// # Errors
///
/// A compile error for generic, `async`, method, `#[inline]` or multi-argument functions.
///
/// # Examples
///
/// (Compiled and run in the doctests of `taskweave-registry`, which this crate cannot depend on.)
///
/// ```text
/// #[taskweave::remote]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
/// let entry = taskweave::registry::lookup(concat!(module_path!(), "::square")).unwrap();
/// ```
#[proc_macro_attribute]
pub fn remote(args: TokenStream, item: TokenStream) -> TokenStream {
    match remote::expand(args, item) {
        Ok(out) => out,
        Err(msg) => compile_error(&msg),
    }
}

fn expand(args: TokenStream, item: TokenStream, is_test: bool) -> TokenStream {
    let options = match Options::parse(args, is_test) {
        Ok(o) => o,
        Err(msg) => return compile_error(&msg),
    };
    let mut tokens: Vec<TokenTree> = item.into_iter().collect();
    let Some(TokenTree::Group(body)) = tokens.pop() else {
        return compile_error("expected an `async fn` with a body");
    };
    if body.delimiter() != Delimiter::Brace {
        return compile_error("expected an `async fn` with a body");
    }
    let async_at = tokens
        .iter()
        .position(|t| matches!(t, TokenTree::Ident(i) if i.to_string() == "async"));
    match async_at {
        Some(i) => {
            tokens.remove(i);
        }
        None => return compile_error("the function must be `async fn`"),
    }
    let mut builder = String::from("::taskweave::Runtime::builder()");
    if options.current_thread {
        builder.push_str(".current_thread()");
    }
    if let Some(n) = options.worker_threads {
        builder.push_str(&format!(".multi_thread().worker_threads({n})"));
    }
    if options.debug {
        builder.push_str(".debug(true)");
    }
    if options.interrupt_off {
        builder.push_str(".on_interrupt(::taskweave::OnInterrupt::Off)");
    }
    let wrapper: TokenStream = match body_fn_signature(&tokens) {
        // The body becomes an `async fn` of its own, so that its future's type is opaque to this
        // function and whether it is `Send` is known when the lookup below picks `run_task` (a
        // task, for a sendable body) or `run` (the calling thread, for any body).
        Some(output) => format!(
            "{{ ::taskweave::__private::enter_main(); \
             async fn __taskweave_body() -> {output} BODY \
             #[allow(unused_imports)] \
             use ::taskweave::__private::{{MainAsTask as _, MainOnCaller as _}}; \
             (&::taskweave::__private::Main::new({builder}, __taskweave_body())).__run() }}"
        ),
        None => format!(
            "{{ ::taskweave::__private::enter_main(); \
             ::taskweave::__private::block_main({builder}, async move BODY) }}"
        ),
    }
    .parse()
    .unwrap_or_default();
    // Put the user's body tokens (with their spans, for good error messages) in place of BODY.
    let wrapped = replace_body(wrapper, &body);
    let mut out = TokenStream::new();
    if is_test {
        out.extend(
            "#[::core::prelude::v1::test]"
                .parse::<TokenStream>()
                .unwrap_or_default(),
        );
    }
    out.extend(tokens);
    out.extend([TokenTree::Group(wrapped)]);
    out
}

/// The return type the body's own `async fn` gets, for a function without parameters or
/// generics (`()` when it declares none); `None` when the body must stay inside the function,
/// because it uses the function's parameters or generics.
fn body_fn_signature(tokens: &[TokenTree]) -> Option<String> {
    let name_at = tokens
        .iter()
        .position(|t| matches!(t, TokenTree::Ident(i) if i.to_string() == "fn"))?
        + 1;
    let params = match tokens.get(name_at + 1)? {
        TokenTree::Group(g) if g.delimiter() == Delimiter::Parenthesis => g,
        // Generics follow the name.
        _ => return None,
    };
    if !params.stream().is_empty() {
        return None;
    }
    let rest = &tokens[name_at + 2..];
    if rest.is_empty() {
        return Some("()".to_owned());
    }
    let arrow = matches!(
        (rest.first(), rest.get(1)),
        (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b))) if a.as_char() == '-' && b.as_char() == '>'
    );
    let output: TokenStream = rest.get(2..)?.iter().cloned().collect();
    let output = output.to_string();
    // A `where` clause, or anything but a plain return type, keeps the body in place.
    if !arrow || output.is_empty() || output.split_whitespace().any(|w| w == "where") {
        return None;
    }
    Some(output)
}

fn replace_body(wrapper: TokenStream, body: &Group) -> Group {
    let mut iter = wrapper.into_iter();
    let Some(TokenTree::Group(outer)) = iter.next() else {
        return body.clone();
    };
    let inner = substitute(outer.stream(), body);
    Group::new(Delimiter::Brace, inner)
}

fn substitute(stream: TokenStream, body: &Group) -> TokenStream {
    stream
        .into_iter()
        .map(|tt| match tt {
            TokenTree::Ident(i) if i.to_string() == "BODY" => TokenTree::Group(body.clone()),
            TokenTree::Group(g) => {
                let mut ng = Group::new(g.delimiter(), substitute(g.stream(), body));
                ng.set_span(g.span());
                TokenTree::Group(ng)
            }
            other => other,
        })
        .collect()
}

struct Options {
    debug: bool,
    current_thread: bool,
    worker_threads: Option<usize>,
    interrupt_off: bool,
}

impl Options {
    fn parse(args: TokenStream, is_test: bool) -> Result<Options, String> {
        let mut opts = Options {
            debug: false,
            current_thread: is_test,
            worker_threads: None,
            interrupt_off: false,
        };
        let tokens: Vec<TokenTree> = args.into_iter().collect();
        let mut i = 0;
        while i < tokens.len() {
            let name = match &tokens[i] {
                TokenTree::Ident(id) => id.to_string(),
                TokenTree::Punct(p) if p.as_char() == ',' => {
                    i += 1;
                    continue;
                }
                other => return Err(format!("unexpected `{other}` in attribute options")),
            };
            match name.as_str() {
                "debug" => opts.debug = true,
                "current_thread" => opts.current_thread = true,
                "worker_threads" => {
                    let value = match (tokens.get(i + 1), tokens.get(i + 2)) {
                        (Some(TokenTree::Punct(p)), Some(TokenTree::Literal(l)))
                            if p.as_char() == '=' =>
                        {
                            l.to_string()
                        }
                        _ => return Err("expected `worker_threads = N`".to_owned()),
                    };
                    let n: usize = value
                        .parse()
                        .map_err(|_| format!("`worker_threads` must be a number, not `{value}`"))?;
                    opts.worker_threads = Some(n);
                    opts.current_thread = false;
                    i += 2;
                }
                "on_interrupt" => {
                    // Only `off`: the other modes end or fail `main`, which is the default's job.
                    match (tokens.get(i + 1), tokens.get(i + 2)) {
                        (Some(TokenTree::Punct(p)), Some(TokenTree::Ident(v)))
                            if p.as_char() == '=' && v.to_string() == "off" =>
                        {
                            opts.interrupt_off = true;
                        }
                        _ => return Err("expected `on_interrupt = off`".to_owned()),
                    }
                    i += 2;
                }
                other => {
                    return Err(format!(
                        "unknown option `{other}`; expected `debug`, `current_thread`, \
                         `worker_threads = N` or `on_interrupt = off`"
                    ));
                }
            }
            i += 1;
        }
        Ok(opts)
    }
}

fn compile_error(msg: &str) -> TokenStream {
    let mut ts: TokenStream = format!("::core::compile_error!({msg:?});")
        .parse()
        .unwrap_or_default();
    // Point the error at the attribute rather than at nothing.
    ts = ts
        .into_iter()
        .map(|mut t| {
            t.set_span(Span::call_site());
            t
        })
        .collect();
    ts
}
