//! Helpers on token trees: splitting a list at its commas, recognising `for`, `in` and `=>`,
//! parsing a slice of trees with `syn`, and printing a path as the user wrote it.

use proc_macro2::{Delimiter, Group, Span, TokenTree};
use quote::ToTokens;
use syn::parse::{ParseStream, Parser};
use syn::Path;

/// Splits a list at its top-level commas: each chunk with the comma that ends it. A trailing
/// comma does not make an empty last chunk.
pub(super) fn split(trees: &[TokenTree]) -> Vec<(&[TokenTree], Option<&TokenTree>)> {
    let mut chunks = Vec::new();
    let mut start = 0;
    for (i, tree) in trees.iter().enumerate() {
        if matches!(tree, TokenTree::Punct(p) if p.as_char() == ',') {
            chunks.push((&trees[start..i], Some(tree)));
            start = i + 1;
        }
    }
    if start < trees.len() {
        chunks.push((&trees[start..], None));
    }
    chunks
}

/// Whether `tree` is the identifier `name`.
pub(super) fn is_ident(tree: &TokenTree, name: &str) -> bool {
    matches!(tree, TokenTree::Ident(ident) if ident == name)
}

/// Whether `trees[i..]` starts with `=>`.
pub(super) fn is_fat_arrow(trees: &[TokenTree], i: usize) -> bool {
    match (&trees[i], trees.get(i + 1)) {
        (TokenTree::Punct(eq), Some(TokenTree::Punct(gt))) => {
            eq.as_char() == '='
                && eq.spacing() == proc_macro2::Spacing::Joint
                && gt.as_char() == '>'
        }
        _ => false,
    }
}

/// The span of the path's last name.
pub(crate) fn last_span(path: &Path) -> Span {
    path.segments
        .last()
        .map_or_else(Span::call_site, |s| s.ident.span())
}

/// The path as the user would write it.
pub(crate) fn pretty(path: &Path) -> String {
    path.to_token_stream().to_string().replace(' ', "")
}

/// Parses `trees` with `parse`, in a buffer whose end is `end`: "unexpected end of input"
/// points at the user's next token (or closing delimiter) rather than at the whole macro call.
pub(super) fn parse_tokens<T>(
    trees: &[TokenTree],
    end: Span,
    parse: impl FnOnce(ParseStream<'_>) -> syn::Result<T>,
) -> syn::Result<T> {
    let mut group = Group::new(Delimiter::Bracket, trees.iter().cloned().collect());
    group.set_span(end);
    let parser = |input: ParseStream<'_>| {
        let content;
        syn::bracketed!(content in input);
        let value = parse(&content)?;
        if !content.is_empty() {
            return Err(content.error("unexpected token"));
        }
        Ok(value)
    };
    parser.parse2(TokenTree::Group(group).into())
}
