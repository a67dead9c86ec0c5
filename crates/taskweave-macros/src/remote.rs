//! The `#[remote]` attribute: keeps a plain `fn(A) -> R` (or `fn() -> R`) as it is and adds its entry (name,
//! signature, trampoline) to the registry's link-time table. Parsed on plain token trees, like
//! the other attributes of this crate.

use proc_macro::{Delimiter, Spacing, TokenStream, TokenTree};

/// What `#[remote(...)]` was given.
struct Options {
    /// The path of the registry crate; `::taskweave::registry` through the facade.
    krate: String,
    /// An explicit name, as a string literal token.
    name: Option<String>,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> Result<TokenStream, String> {
    let options = parse_options(args)?;
    let tokens: Vec<TokenTree> = item.clone().into_iter().collect();
    let fn_at = tokens
        .iter()
        .position(|t| matches!(t, TokenTree::Ident(i) if i.to_string() == "fn"))
        .ok_or("#[remote] goes on a plain `fn name(arg: A) -> R`")?;
    for t in &tokens[..fn_at] {
        if let TokenTree::Ident(i) = t {
            let word = i.to_string();
            if matches!(word.as_str(), "async" | "unsafe" | "const" | "extern") {
                return Err(format!(
                    "#[remote] needs a plain `fn(A) -> R`, not an `{word} fn`"
                ));
            }
        }
    }
    if tokens[..fn_at].windows(2).any(|pair| {
        matches!(pair, [TokenTree::Punct(hash), TokenTree::Group(attr)]
            if hash.as_char() == '#'
                && attr.delimiter() == Delimiter::Bracket
                && matches!(attr.stream().into_iter().next(), Some(TokenTree::Ident(i)) if i.to_string() == "inline"))
    }) {
        return Err("#[remote] functions are never inlined (their address is how the registry finds them): remove the #[inline] attribute".to_owned());
    }
    let Some(TokenTree::Ident(fn_name)) = tokens.get(fn_at + 1) else {
        return Err("expected the function's name after `fn`".to_owned());
    };
    let fn_name = fn_name.to_string();
    let params = match tokens.get(fn_at + 2) {
        Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis => g.stream(),
        Some(TokenTree::Punct(p)) if p.as_char() == '<' => {
            return Err(format!(
                "#[remote] function `{fn_name}` cannot be generic: other builds find it by one name and one signature"
            ));
        }
        _ => return Err("expected the parameter list after the function's name".to_owned()),
    };
    // `None`: no parameter at all, a `fn() -> R` that travels with `()` as its argument.
    let argument = argument_type(params, &fn_name)?;
    let rest = &tokens[fn_at + 3..];
    let Some((TokenTree::Group(body), signature_tail)) = rest.split_last() else {
        return Err("#[remote] needs a function with a body".to_owned());
    };
    if body.delimiter() != Delimiter::Brace {
        return Err("#[remote] needs a function with a body".to_owned());
    }
    if signature_tail
        .iter()
        .any(|t| matches!(t, TokenTree::Ident(i) if i.to_string() == "where"))
    {
        return Err(format!(
            "#[remote] function `{fn_name}` cannot have a where clause"
        ));
    }
    let result = match signature_tail {
        [] => "()".to_owned(),
        [TokenTree::Punct(a), TokenTree::Punct(b), ty @ ..]
            if a.as_char() == '-' && b.as_char() == '>' && !ty.is_empty() =>
        {
            ty.iter().cloned().collect::<TokenStream>().to_string()
        }
        _ => return Err("expected `-> ResultType` or nothing before the body".to_owned()),
    };
    let krate = &options.krate;
    let name = options.name.unwrap_or_else(|| {
        format!("::core::concat!(::core::module_path!(), \"::\", \"{fn_name}\")")
    });
    let (argument, fn_type, invoke) = match argument {
        Some(argument) => {
            let fn_type = format!("fn({argument}) -> {result}");
            (argument, fn_type, "invoke")
        }
        None => (
            "()".to_owned(),
            format!("fn() -> {result}"),
            "invoke_nullary",
        ),
    };
    let registration = format!(
        "const _: () = {{
            #[{krate}::__private::linkme::distributed_slice({krate}::REMOTE_FUNCTIONS)]
            #[linkme(crate = {krate}::__private::linkme)]
            static __TASKWEAVE_REMOTE_FN: {krate}::RemoteFn = {krate}::__private::entry(
                {name},
                ::core::file!(),
                ::core::line!(),
                || {krate}::Signature::of::<{argument}, {result}>(),
                || {fn_name} as {fn_type} as usize,
                |arg, out| {krate}::__private::{invoke}({fn_name} as {fn_type}, arg, out),
            );
        }};"
    );
    let registration: TokenStream = registration
        .parse()
        .map_err(|e| format!("#[remote] produced code that does not parse: {e}"))?;
    // An inlinable function may be copied into every codegen unit that takes its address, so
    // that `f as usize` differs between the registration and the caller (release builds do this
    // to small functions by themselves): never inlined, it has one address.
    let mut out: TokenStream = "#[inline(never)]"
        .parse()
        .map_err(|e| format!("#[remote] produced code that does not parse: {e}"))?;
    out.extend(item);
    out.extend(registration);
    Ok(out)
}

/// `crate = some::path` and `name = "literal"`, comma separated.
fn parse_options(args: TokenStream) -> Result<Options, String> {
    let mut options = Options {
        krate: "::taskweave::registry".to_owned(),
        name: None,
    };
    for part in split_top_level(args) {
        let Some((TokenTree::Ident(key), rest)) = part.split_first() else {
            continue;
        };
        let Some((TokenTree::Punct(eq), value)) = rest.split_first() else {
            return Err(format!("expected `{key} = ...` in #[remote(...)]"));
        };
        if eq.as_char() != '=' || value.is_empty() {
            return Err(format!("expected `{key} = ...` in #[remote(...)]"));
        }
        let value_text = value.iter().cloned().collect::<TokenStream>().to_string();
        match key.to_string().as_str() {
            "crate" => options.krate = value_text,
            "name" => match value {
                [TokenTree::Literal(lit)] if lit.to_string().starts_with('"') => {
                    options.name = Some(lit.to_string());
                }
                _ => return Err("`name` takes a string literal: name = \"app::square\"".into()),
            },
            other => {
                return Err(format!(
                    "unknown #[remote] option `{other}` (known: crate = path, name = \"...\")"
                ));
            }
        }
    }
    Ok(options)
}

/// The type of the one parameter in `(pattern: Type)`; `None` for `()`, no parameter.
fn argument_type(params: TokenStream, fn_name: &str) -> Result<Option<String>, String> {
    let parts = split_top_level(params);
    let one = match parts.as_slice() {
        [] => return Ok(None),
        [one] => one,
        _ => {
            return Err(format!(
                "#[remote] function `{fn_name}` must take one argument at most (a tuple for several)"
            ));
        }
    };
    // The pattern's colon: a lone `:` not preceded by another (which would make it a `::`).
    let mut colon = None;
    for (i, t) in one.iter().enumerate() {
        if let TokenTree::Punct(p) = t {
            let after_colon =
                i > 0 && matches!(&one[i - 1], TokenTree::Punct(q) if q.as_char() == ':');
            if p.as_char() == ':' && p.spacing() == Spacing::Alone && !after_colon {
                colon = Some(i);
                break;
            }
        }
    }
    let colon = colon.ok_or_else(|| format!("expected `pattern: Type` in `{fn_name}`"))?;
    if one[..colon]
        .iter()
        .any(|t| matches!(t, TokenTree::Ident(i) if i.to_string() == "self"))
    {
        return Err(format!(
            "#[remote] function `{fn_name}` must be a free function, not a method"
        ));
    }
    Ok(Some(
        one[colon + 1..]
            .iter()
            .cloned()
            .collect::<TokenStream>()
            .to_string(),
    ))
}

/// Splits on commas outside any group and outside `<...>`; drops empty parts (a trailing comma).
fn split_top_level(stream: TokenStream) -> Vec<Vec<TokenTree>> {
    let mut parts = vec![Vec::new()];
    let mut angle = 0usize;
    let mut previous_dash = false;
    for t in stream {
        if let TokenTree::Punct(p) = &t {
            match p.as_char() {
                '<' => angle += 1,
                '>' if !previous_dash => angle = angle.saturating_sub(1),
                ',' if angle == 0 => {
                    parts.push(Vec::new());
                    previous_dash = false;
                    continue;
                }
                _ => {}
            }
            previous_dash = p.as_char() == '-';
        } else {
            previous_dash = false;
        }
        if let Some(last) = parts.last_mut() {
            last.push(t);
        }
    }
    parts.retain(|p| !p.is_empty());
    parts
}
