//! The module tree read from the files: each module's children, the
//! names its `use` declarations bind, its top-level items and every path
//! its code names; and the paths followed to the modules that define them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};

use super::cycles::{shortest_cycle, strongly_connected, Graph};
use super::tokens::{tokenize, Tok, Token};
use super::{Cycle, Edge};

type ModuleId = usize;

/// A path as written, read in the module `scope`.
#[derive(Debug, Clone)]
struct Written {
    segments: Vec<String>,
    scope: ModuleId,
    line: usize,
}

#[derive(Debug, Default)]
struct Module {
    name: String,
    parent: Option<ModuleId>,
    /// The file holding this module's code, relative to `src`.
    file: PathBuf,
    /// Declared with a body (`mod tests { … }`) inside its parent's file.
    inline: bool,
    children: BTreeMap<String, ModuleId>,
    /// Names bound by `use`, to the path they import.
    bindings: HashMap<String, Written>,
    /// Glob imports (`use x::*`).
    globs: Vec<Written>,
    /// Items defined at the module's top level (types, traits, functions,
    /// constants, macros).
    items: BTreeSet<String>,
    /// Every path this module's code names.
    uses: Vec<Written>,
}

pub(super) struct Tree {
    modules: Vec<Module>,
}

/// Where a path leads: the module that defines the item, and whether the
/// path named that module itself.
#[derive(Debug, Clone, Copy)]
struct Target {
    module: ModuleId,
    is_module: bool,
}

impl Tree {
    pub(super) fn load(read: &impl Fn(&Path) -> io::Result<String>) -> io::Result<Tree> {
        let mut tree = Tree {
            modules: vec![Module {
                name: "crate".to_string(),
                file: PathBuf::from("lib.rs"),
                ..Module::default()
            }],
        };
        tree.load_file(0, read, PathBuf::new())?;
        Ok(tree)
    }

    /// Reads the file of module `id`, whose file children live in `dir`.
    fn load_file(
        &mut self,
        id: ModuleId,
        read: &impl Fn(&Path) -> io::Result<String>,
        dir: PathBuf,
    ) -> io::Result<()> {
        let file = self.modules[id].file.clone();
        let text = read(&file)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", file.display())))?;
        let tokens = tokenize(&text);
        // The modules whose bodies are open, innermost last, with the brace
        // depth at which each was opened.
        let mut scopes: Vec<(ModuleId, usize)> = vec![(id, 0)];
        let mut depth = 0;
        let mut test_only = false;
        let mut i = 0;
        while i < tokens.len() {
            let scope = scopes.last().map_or(id, |s| s.0);
            match &tokens[i].tok {
                Tok::Punct('#') => {
                    let (end, is_test) = attribute(&tokens, i);
                    test_only |= is_test;
                    i = end;
                    continue;
                }
                _ if test_only => {
                    test_only = false;
                    i = skip_item(&tokens, i);
                    continue;
                }
                Tok::Ident(kw) if kw == "mod" => {
                    if let (Some(Tok::Ident(name)), Some(after)) = (
                        tokens.get(i + 1).map(|t| &t.tok),
                        tokens.get(i + 2).map(|t| &t.tok),
                    ) {
                        let name = name.clone();
                        if *after == Tok::Punct(';') {
                            let child_dir = self.child_dir(scope, &dir);
                            self.declare_file_child(scope, &name, read, &child_dir)?;
                            i += 3;
                            continue;
                        }
                        if *after == Tok::Punct('{') {
                            let child = self.add_child(scope, &name, true);
                            depth += 1;
                            scopes.push((child, depth));
                            i += 3;
                            continue;
                        }
                    }
                    i += 1;
                }
                Tok::Ident(kw)
                    if ITEM_KEYWORDS.contains(&kw.as_str())
                        && scopes.last().is_some_and(|s| s.1 == depth) =>
                {
                    let at = if kw == "macro_rules" { i + 2 } else { i + 1 };
                    if let Some(Tok::Ident(name)) = tokens.get(at).map(|t| &t.tok) {
                        self.modules[scope].items.insert(name.clone());
                    }
                    i += 1;
                }
                Tok::Ident(kw)
                    if kw == "use"
                        && matches!(
                            tokens.get(i + 1).map(|t| &t.tok),
                            Some(Tok::Ident(_) | Tok::PathSep | Tok::Punct('{'))
                        ) =>
                {
                    let mut leaves = Vec::new();
                    let line = tokens[i].line;
                    let end = use_tree(&tokens, i + 1, Vec::new(), true, &mut leaves);
                    for leaf in leaves {
                        let written = Written {
                            segments: leaf.segments,
                            scope,
                            line,
                        };
                        let module = &mut self.modules[scope];
                        match leaf.binding {
                            Binding::Name(name) => {
                                module.bindings.insert(name, written.clone());
                            }
                            Binding::Glob => module.globs.push(written.clone()),
                            Binding::None => {}
                        }
                        module.uses.push(written);
                    }
                    i = end;
                }
                Tok::Punct('{') => {
                    depth += 1;
                    i += 1;
                }
                Tok::Punct('}') => {
                    if scopes.len() > 1 && scopes.last().is_some_and(|s| s.1 == depth) {
                        scopes.pop();
                    }
                    depth = depth.saturating_sub(1);
                    i += 1;
                }
                Tok::Ident(first)
                    if tokens.get(i + 1).map(|t| &t.tok) == Some(&Tok::PathSep)
                        && (i == 0 || tokens[i - 1].tok != Tok::PathSep) =>
                {
                    let mut segments = vec![first.clone()];
                    let mut j = i + 1;
                    while tokens.get(j).map(|t| &t.tok) == Some(&Tok::PathSep) {
                        match tokens.get(j + 1).map(|t| &t.tok) {
                            Some(Tok::Ident(next)) => {
                                segments.push(next.clone());
                                j += 2;
                            }
                            _ => break,
                        }
                    }
                    self.modules[scope].uses.push(Written {
                        segments,
                        scope,
                        line: tokens[i].line,
                    });
                    i = j;
                }
                _ => i += 1,
            }
        }
        Ok(())
    }

    /// The directory holding the file children of `scope`: the file's own
    /// directory for `lib.rs` and `mod.rs`, `dir/name/` for `name.rs`, and
    /// below that one directory per inline module.
    fn child_dir(&self, scope: ModuleId, file_dir: &Path) -> PathBuf {
        let mut inline = Vec::new();
        let mut m = scope;
        while self.modules[m].inline {
            inline.push(self.modules[m].name.clone());
            m = self.modules[m].parent.unwrap_or(0);
        }
        let mut dir = file_dir.to_path_buf();
        let file = &self.modules[m].file;
        let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        if stem != "lib" && stem != "mod" && stem != "main" {
            dir.push(stem);
        }
        for name in inline.iter().rev() {
            dir.push(name);
        }
        dir
    }

    fn declare_file_child(
        &mut self,
        parent: ModuleId,
        name: &str,
        read: &impl Fn(&Path) -> io::Result<String>,
        dir: &Path,
    ) -> io::Result<()> {
        let child = self.add_child(parent, name, false);
        let flat = dir.join(format!("{name}.rs"));
        let nested = dir.join(name).join("mod.rs");
        let (file, child_dir) = match read(&flat) {
            Ok(_) => (flat, dir.to_path_buf()),
            Err(_) => (nested, dir.join(name)),
        };
        self.modules[child].file = file;
        self.load_file(child, read, child_dir)
    }

    fn add_child(&mut self, parent: ModuleId, name: &str, inline: bool) -> ModuleId {
        let id = self.modules.len();
        let file = self.modules[parent].file.clone();
        self.modules.push(Module {
            name: name.to_string(),
            parent: Some(parent),
            file,
            inline,
            ..Module::default()
        });
        self.modules[parent].children.insert(name.to_string(), id);
        id
    }

    /// The module a path written in `scope` leads to; `None` for paths
    /// outside the crate (other crates, locals, `Self`).
    fn resolve(&self, segments: &[String], scope: ModuleId, hops: usize) -> Option<Target> {
        if hops > 64 {
            return None;
        }
        let (first, rest) = segments.split_first()?;
        let mut current = scope;
        let rest = match first.as_str() {
            "crate" => {
                current = 0;
                rest
            }
            "self" => rest,
            "super" => {
                current = self.modules[current].parent?;
                let mut rest = rest;
                while rest.first().map(String::as_str) == Some("super") {
                    current = self.modules[current].parent?;
                    rest = &rest[1..];
                }
                rest
            }
            _ => return self.walk(scope, segments, true, hops),
        };
        self.walk(current, rest, false, hops)
    }

    /// Follows `segments` from `current` through child modules and the
    /// names bound in each. In a `relative` path (one that does not start
    /// with `crate`, `self` or `super`), a first segment that names nothing
    /// of this crate's leads outside it.
    fn walk(
        &self,
        mut current: ModuleId,
        segments: &[String],
        relative: bool,
        hops: usize,
    ) -> Option<Target> {
        for (k, segment) in segments.iter().enumerate() {
            let module = &self.modules[current];
            if let Some(&child) = module.children.get(segment) {
                current = child;
                continue;
            }
            let bound = module
                .bindings
                .get(segment)
                .and_then(|written| self.resolve(&written.segments, written.scope, hops + 1));
            let bound = bound.or_else(|| {
                module.globs.iter().find_map(|glob| {
                    let target = self.resolve(&glob.segments, glob.scope, hops + 1)?;
                    let m = &self.modules[target.module];
                    let names_it = m.children.contains_key(segment)
                        || m.bindings.contains_key(segment)
                        || m.items.contains(segment);
                    (target.is_module && names_it)
                        .then(|| {
                            self.walk(
                                target.module,
                                std::slice::from_ref(segment),
                                false,
                                hops + 1,
                            )
                        })
                        .flatten()
                })
            });
            match bound {
                Some(target) if target.is_module => current = target.module,
                Some(target) => return Some(target),
                // The first segment names nothing of this crate's in scope
                // (another crate, a local, a type parameter).
                None if k == 0 && relative && !module.items.contains(segment) => return None,
                // An item defined here.
                None => {
                    return Some(Target {
                        module: current,
                        is_module: false,
                    })
                }
            }
        }
        Some(Target {
            module: current,
            is_module: true,
        })
    }

    /// The file module holding module `id` (itself unless it is inline).
    fn file_module(&self, mut id: ModuleId) -> ModuleId {
        while self.modules[id].inline {
            id = self.modules[id].parent.unwrap_or(0);
        }
        id
    }

    /// The names from the crate root down to `id`, the root excluded.
    fn path(&self, mut id: ModuleId) -> Vec<String> {
        let mut path = Vec::new();
        while let Some(parent) = self.modules[id].parent {
            path.push(self.modules[id].name.clone());
            id = parent;
        }
        path.reverse();
        path
    }

    /// Each directory's graph: `parent -> from -> to -> first use`.
    fn graphs(&self) -> BTreeMap<String, Graph> {
        let mut graphs: BTreeMap<String, Graph> = BTreeMap::new();
        for (id, module) in self.modules.iter().enumerate() {
            let from_path = self.path(self.file_module(id));
            for written in &module.uses {
                let Some(target) = self.resolve(&written.segments, written.scope, 0) else {
                    continue;
                };
                let to_path = self.path(self.file_module(target.module));
                let common = from_path
                    .iter()
                    .zip(&to_path)
                    .take_while(|(a, b)| a == b)
                    .count();
                // An ancestor or a descendant: structure, not an edge.
                if common == from_path.len() || common == to_path.len() {
                    continue;
                }
                let parent = std::iter::once("crate")
                    .chain(from_path[..common].iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join("::");
                let (from, to) = (from_path[common].clone(), to_path[common].clone());
                graphs
                    .entry(parent)
                    .or_default()
                    .entry(from.clone())
                    .or_default()
                    .entry(to.clone())
                    .or_insert_with(|| Edge {
                        from,
                        to,
                        file: self.modules[id].file.clone(),
                        line: written.line,
                        path: written.segments.join("::"),
                    });
            }
        }
        graphs
    }

    pub(super) fn cycles(&self) -> Vec<Cycle> {
        let mut cycles = Vec::new();
        for (parent, graph) in self.graphs() {
            for members in strongly_connected(&graph) {
                if members.len() < 2 {
                    continue;
                }
                let steps = shortest_cycle(&graph, &members);
                cycles.push(Cycle {
                    parent: parent.clone(),
                    members: members.into_iter().collect(),
                    steps,
                });
            }
        }
        cycles
    }
}

/// The keywords that define a named item at a module's top level.
const ITEM_KEYWORDS: &[&str] = &[
    "struct",
    "enum",
    "union",
    "trait",
    "type",
    "fn",
    "const",
    "static",
    "macro_rules",
];

/// What one leaf of a `use` tree binds.
enum Binding {
    Name(String),
    Glob,
    /// `use Trait as _;`
    None,
}

struct Leaf {
    segments: Vec<String>,
    binding: Binding,
}

/// Reads the `use` tree starting at token `i` under `prefix`; returns the
/// index after it (after the `;` when it is the `top` of the declaration).
fn use_tree(
    tokens: &[Token],
    mut i: usize,
    prefix: Vec<String>,
    top: bool,
    leaves: &mut Vec<Leaf>,
) -> usize {
    let mut segments = prefix;
    let tok = |i: usize| tokens.get(i).map(|t| &t.tok);
    if tok(i) == Some(&Tok::PathSep) {
        // `use ::other_crate::…`: outside this crate.
        segments.push("::".to_string());
        i += 1;
    }
    loop {
        match tok(i) {
            Some(Tok::Ident(name)) => {
                segments.push(name.clone());
                i += 1;
                if tok(i) == Some(&Tok::PathSep) {
                    i += 1;
                    continue;
                }
                let mut name = segments.last().cloned().unwrap_or_default();
                if name == "self" {
                    segments.pop();
                    name = segments.last().cloned().unwrap_or_default();
                }
                if tok(i) == Some(&Tok::Ident("as".to_string())) {
                    if let Some(Tok::Ident(alias)) = tok(i + 1) {
                        name = alias.clone();
                    }
                    i += 2;
                }
                let binding = if name == "_" {
                    Binding::None
                } else {
                    Binding::Name(name)
                };
                leaves.push(Leaf { segments, binding });
                break;
            }
            Some(Tok::Punct('*')) => {
                leaves.push(Leaf {
                    segments,
                    binding: Binding::Glob,
                });
                i += 1;
                break;
            }
            Some(Tok::Punct('{')) => {
                i += 1;
                while let Some(t) = tok(i) {
                    match t {
                        Tok::Punct('}') => {
                            i += 1;
                            break;
                        }
                        Tok::Punct(',') => i += 1,
                        _ => {
                            let next = use_tree(tokens, i, segments.clone(), false, leaves);
                            i = next.max(i + 1);
                        }
                    }
                }
                break;
            }
            _ => break,
        }
    }
    if top {
        while let Some(t) = tok(i) {
            i += 1;
            if *t == Tok::Punct(';') {
                break;
            }
        }
    }
    i
}

/// Reads the attribute starting at `i` (`#[…]` or `#![…]`): the index
/// after it, and whether it restricts the next item to test builds.
fn attribute(tokens: &[Token], i: usize) -> (usize, bool) {
    let mut j = i + 1;
    if tokens.get(j).map(|t| &t.tok) == Some(&Tok::Punct('!')) {
        j += 1;
    }
    if tokens.get(j).map(|t| &t.tok) != Some(&Tok::Punct('[')) {
        return (i + 1, false);
    }
    let start = j + 1;
    let mut depth = 0;
    while j < tokens.len() {
        match tokens[j].tok {
            Tok::Punct('[') => depth += 1,
            Tok::Punct(']') => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            _ => {}
        }
        j += 1;
    }
    let inner = &tokens[start.min(j)..j];
    let ident = |t: &Token, name: &str| matches!(&t.tok, Tok::Ident(s) if s == name);
    let is_test = inner.first().is_some_and(|t| ident(t, "cfg"))
        && inner.iter().any(|t| ident(t, "test"))
        && !inner.iter().any(|t| ident(t, "not") || ident(t, "any"));
    // An inner attribute (`#![cfg(test)]`) applies to the file, which the
    // declaring `mod` line already marks: not to the next item.
    let inner_attribute = tokens.get(i + 1).map(|t| &t.tok) == Some(&Tok::Punct('!'));
    (j + 1, is_test && !inner_attribute)
}

/// Skips the item starting at `i`: to its `;`, or to the end of its body.
/// Stops before a closing brace that is not its own.
fn skip_item(tokens: &[Token], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < tokens.len() {
        match tokens[i].tok {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']') => depth = depth.saturating_sub(1),
            Tok::Punct('}') => {
                if depth == 0 {
                    return i;
                }
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            Tok::Punct(';') if depth == 0 => return i + 1,
            _ => {}
        }
        i += 1;
    }
    i
}
