//! Helpers shared by the macros: error collection and type text.

use std::fmt::Display;

use proc_macro2::{Spacing, TokenStream, TokenTree};
use quote::ToTokens;

/// Collects spanned errors so that every mistake is reported at once.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    /// Records `message` spanned on `tokens`.
    pub(crate) fn push(&mut self, tokens: impl ToTokens, message: impl Display) {
        self.add(syn::Error::new_spanned(tokens, message));
    }

    /// Records an error.
    pub(crate) fn add(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// The errors as `compile_error!` invocations, or `None` when there are none.
    pub(crate) fn finish(self) -> Option<TokenStream> {
        self.0.map(|e| e.to_compile_error())
    }

    /// Whether nothing was recorded.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }
}

/// A type written as a reader would: `Vec<u32>`, `&str`, `crate::Db`.
pub(crate) fn type_text(ty: &impl ToTokens) -> String {
    let mut out = String::new();
    write_tokens(&mut out, ty.to_token_stream());
    out
}

fn write_tokens(out: &mut String, tokens: TokenStream) {
    let mut prev_joint = false;
    for tree in tokens {
        match tree {
            TokenTree::Group(g) => {
                let (open, close) = match g.delimiter() {
                    proc_macro2::Delimiter::Parenthesis => ("(", ")"),
                    proc_macro2::Delimiter::Bracket => ("[", "]"),
                    proc_macro2::Delimiter::Brace => ("{", "}"),
                    proc_macro2::Delimiter::None => ("", ""),
                };
                out.push_str(open);
                write_tokens(out, g.stream());
                out.push_str(close);
                prev_joint = false;
            }
            TokenTree::Punct(p) => {
                let c = p.as_char();
                match c {
                    ',' | ';' => {
                        out.push(c);
                        out.push(' ');
                    }
                    '=' if !prev_joint => {
                        trim_end(out);
                        out.push_str(" = ");
                    }
                    '+' => {
                        trim_end(out);
                        out.push_str(" + ");
                    }
                    '\'' => {
                        space_before_word(out);
                        out.push(c);
                    }
                    _ => {
                        if c == '&' && out.ends_with(|ch: char| ch.is_alphanumeric()) {
                            out.push(' ');
                        }
                        out.push(c);
                    }
                }
                prev_joint = p.spacing() == Spacing::Joint;
            }
            TokenTree::Ident(i) => {
                space_before_word(out);
                out.push_str(&i.to_string());
                prev_joint = false;
            }
            TokenTree::Literal(l) => {
                space_before_word(out);
                out.push_str(&l.to_string());
                prev_joint = false;
            }
        }
    }
    trim_end(out);
}

/// Separates two words (`dyn Trait`, `mut T`) and a lifetime from what follows.
fn space_before_word(out: &mut String) {
    let last = out.chars().last();
    let after_lifetime = {
        let word: String = out
            .chars()
            .rev()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        !word.is_empty() && out[..out.len() - word.len()].ends_with('\'')
    };
    if matches!(last, Some(c) if c.is_alphanumeric() || c == '_') || after_lifetime {
        out.push(' ');
    }
}

fn trim_end(out: &mut String) {
    while out.ends_with(' ') {
        out.pop();
    }
}

/// `s` with every character that may not stand in an identifier made `_`.
pub(crate) fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::type_text;

    #[test]
    fn types_read_as_written() {
        let cases: [(syn::Type, &str); 7] = [
            (syn::parse_quote!(Vec<u32>), "Vec<u32>"),
            (syn::parse_quote!(&str), "&str"),
            (syn::parse_quote!(crate::db::Name), "crate::db::Name"),
            (syn::parse_quote!((u32, String)), "(u32, String)"),
            (
                syn::parse_quote!(BTreeMap<String, &'a T>),
                "BTreeMap<String, &'a T>",
            ),
            (syn::parse_quote!([u8; 4]), "[u8; 4]"),
            (syn::parse_quote!(&mut dyn Fn(u8)), "&mut dyn Fn(u8)"),
        ];
        for (ty, text) in cases {
            assert_eq!(type_text(&ty), text);
        }
    }
}
