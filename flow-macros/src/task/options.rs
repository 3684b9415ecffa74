//! The options of `#[task(...)]`.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, Ident, LitInt, LitStr, Path, Token};

use crate::util::Errors;

const KNOWN: &str = "`name`, `provides`, `priority`, `blocking`, `timeout`, `revert` and `crate`";

/// What `provides = ...` names.
pub(crate) enum Provides {
    /// `provides = name`: the whole return value.
    One(Ident),
    /// `provides = (a, b)`: a tuple, destructured.
    Many(Vec<Ident>, TokenStream),
    /// `provides = Endpoint { host: String, port: u16 }`: a struct,
    /// destructured field by field (the fields named, with their types).
    Struct(StructOutputs),
}

/// The struct of `provides = Path { field: Type, ... }`.
pub(crate) struct StructOutputs {
    /// The struct's path, as written.
    pub(crate) path: Path,
    /// Each field provided: its name (the symbol) and its type.
    pub(crate) fields: Vec<(Ident, syn::Type)>,
    /// The whole option value, for spans.
    pub(crate) tokens: TokenStream,
}

/// `Path { field: Type, ... }`.
fn parse_struct_outputs(input: ParseStream<'_>) -> syn::Result<(Path, Vec<(Ident, syn::Type)>)> {
    let path: Path = input.parse()?;
    let content;
    syn::braced!(content in input);
    let fields = Punctuated::<(Ident, syn::Type), Token![,]>::parse_terminated_with(
        &content,
        |field: ParseStream<'_>| {
            let name: Ident = field.parse()?;
            field.parse::<Token![:]>()?;
            Ok((name, field.parse()?))
        },
    )?;
    Ok((path, fields.into_iter().collect()))
}

/// The parsed options.
#[derive(Default)]
pub(crate) struct Options {
    pub(crate) krate: Option<Path>,
    pub(crate) name: Option<LitStr>,
    pub(crate) provides: Option<Provides>,
    pub(crate) priority: Option<Expr>,
    pub(crate) blocking: Option<Span>,
    pub(crate) timeout: Option<TokenStream>,
    pub(crate) revert: Option<Path>,
}

impl Options {
    /// The path to the `flow` facade.
    pub(crate) fn krate(&self) -> TokenStream {
        match &self.krate {
            Some(path) => path.to_token_stream(),
            None => quote!(::flow),
        }
    }
}

/// One `key` or `key = value` of the attribute, unparsed.
struct Raw {
    key: Ident,
    value: Option<TokenStream>,
}

impl Parse for Raw {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key = if input.peek(Token![crate]) {
            let kw: Token![crate] = input.parse()?;
            Ident::new("crate", kw.span)
        } else {
            input.parse::<Ident>()?
        };
        let value = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            let mut tokens = TokenStream::new();
            while !input.is_empty() && !input.peek(Token![,]) {
                let tt: proc_macro2::TokenTree = input.parse()?;
                tokens.extend([tt]);
            }
            Some(tokens)
        } else {
            None
        };
        Ok(Raw { key, value })
    }
}

/// Parses the attribute's arguments, recording every mistake.
pub(crate) fn parse(args: TokenStream, errors: &mut Errors) -> Options {
    let mut options = Options::default();
    let parser = Punctuated::<Raw, Token![,]>::parse_terminated;
    let raws = match syn::parse::Parser::parse2(parser, args) {
        Ok(raws) => raws,
        Err(e) => {
            errors.add(syn::Error::new(
                e.span(),
                format!("{e}: write options as `key = value`, separated by commas ({KNOWN})"),
            ));
            return options;
        }
    };
    let mut seen: Vec<String> = Vec::new();
    for raw in raws {
        let key = raw.key.to_string();
        if seen.contains(&key) {
            errors.push(&raw.key, format!("`{key}` is given twice: keep one"));
            continue;
        }
        seen.push(key.clone());
        let value = |errors: &mut Errors| -> Option<TokenStream> {
            if raw.value.is_none() {
                errors.push(&raw.key, format!("`{key}` needs a value: `{key} = ...`"));
            }
            raw.value.clone()
        };
        match key.as_str() {
            "name" => {
                if let Some(v) = value(errors) {
                    match syn::parse2::<LitStr>(v.clone()) {
                        Ok(lit) if lit.value().is_empty() => {
                            errors.push(lit, "the task name cannot be empty");
                        }
                        Ok(lit) => options.name = Some(lit),
                        Err(_) => errors.push(v, "`name` takes a string: `name = \"backup\"`"),
                    }
                }
            }
            "provides" => {
                if let Some(v) = value(errors) {
                    options.provides = parse_provides(v, errors);
                }
            }
            "priority" => {
                if let Some(v) = value(errors) {
                    match syn::parse2::<Expr>(v.clone()) {
                        Ok(e) => options.priority = Some(e),
                        Err(_) => errors.push(v, "`priority` takes an `i32`: `priority = 5`"),
                    }
                }
            }
            "blocking" => match raw.value {
                Some(v) => errors.push(
                    v,
                    "`blocking` is a flag and takes no value: write `blocking` alone",
                ),
                None => options.blocking = Some(raw.key.span()),
            },
            "timeout" => {
                if let Some(v) = value(errors) {
                    options.timeout = parse_timeout(v, errors);
                }
            }
            "revert" => {
                if let Some(v) = value(errors) {
                    match syn::parse2::<Path>(v.clone()) {
                        Ok(p) => options.revert = Some(p),
                        Err(_) => errors.push(
                            v,
                            "`revert` names the compensating function: `revert = undo_backup`",
                        ),
                    }
                }
            }
            "crate" => {
                if let Some(v) = value(errors) {
                    match syn::parse2::<Path>(v.clone()) {
                        Ok(p) => options.krate = Some(p),
                        Err(_) => errors.push(
                            v,
                            "`crate` takes the path of the `flow` crate: `crate = ::my_flow`",
                        ),
                    }
                }
            }
            _ => errors.push(
                &raw.key,
                format!("unknown option `{key}`: `#[task]` takes {KNOWN}"),
            ),
        }
    }
    options
}

fn parse_provides(tokens: TokenStream, errors: &mut Errors) -> Option<Provides> {
    if let Ok(ident) = syn::parse2::<Ident>(tokens.clone()) {
        return Some(Provides::One(ident));
    }
    if let Ok((path, fields)) = syn::parse::Parser::parse2(parse_struct_outputs, tokens.clone()) {
        if fields.is_empty() {
            errors.push(
                tokens,
                "`provides = Struct {}` names nothing: name the fields provided, with their types: `provides = Endpoint { host: String, port: u16 }`",
            );
            return None;
        }
        let mut ok = true;
        for (i, (n, _)) in fields.iter().enumerate() {
            if fields[..i].iter().any(|(m, _)| m == n) {
                errors.push(n, format!("`{n}` is provided twice: name each field once"));
                ok = false;
            }
        }
        return ok.then_some(Provides::Struct(StructOutputs {
            path,
            fields,
            tokens,
        }));
    }
    let names = syn::parse::Parser::parse2(
        |input: ParseStream<'_>| {
            let content;
            syn::parenthesized!(content in input);
            Punctuated::<Ident, Token![,]>::parse_terminated(&content)
        },
        tokens.clone(),
    );
    match names {
        Ok(names) if names.is_empty() => {
            errors.push(
                tokens,
                "`provides = ()` names nothing: leave `provides` out for a task that returns nothing",
            );
            None
        }
        Ok(names) => {
            let names: Vec<Ident> = names.into_iter().collect();
            let mut ok = true;
            for (i, n) in names.iter().enumerate() {
                if names[..i].iter().any(|m| m == n) {
                    errors.push(
                        n,
                        format!("`{n}` is provided twice: give each output its own name"),
                    );
                    ok = false;
                }
            }
            ok.then_some(Provides::Many(names, tokens))
        }
        Err(_) => {
            errors.push(
                tokens,
                "`provides` takes a symbol name, a tuple of names for a tuple result, or a struct's fields with their types: `provides = backup`, `provides = (host, port)` or `provides = Endpoint { host: String, port: u16 }`",
            );
            None
        }
    }
}

fn parse_timeout(tokens: TokenStream, errors: &mut Errors) -> Option<TokenStream> {
    if let Ok(lit) = syn::parse2::<LitInt>(tokens.clone()) {
        let span = lit.span();
        let ctor = match lit.suffix() {
            "ms" => quote_spanned!(span=> from_millis),
            "s" => quote_spanned!(span=> from_secs),
            "min" | "h" => quote_spanned!(span=> from_secs),
            _ => {
                errors.push(
                    &lit,
                    "give the timeout a unit: `500ms`, `30s`, `5min` or `1h` (or a `Duration` expression)",
                );
                return None;
            }
        };
        let Ok(n) = lit.base10_parse::<u64>() else {
            errors.push(&lit, "the timeout does not fit in a `u64`");
            return None;
        };
        let n = match lit.suffix() {
            "min" => n.checked_mul(60),
            "h" => n.checked_mul(3600),
            _ => Some(n),
        };
        let Some(n) = n else {
            errors.push(&lit, "the timeout is too long");
            return None;
        };
        return Some(quote_spanned!(span=> ::core::time::Duration::#ctor(#n)));
    }
    match syn::parse2::<Expr>(tokens.clone()) {
        Ok(expr) => Some(quote_spanned!(expr.span()=> #expr)),
        Err(_) => {
            errors.push(
                tokens,
                "`timeout` takes a duration: `timeout = 30s`, or a `Duration` expression",
            );
            None
        }
    }
}
