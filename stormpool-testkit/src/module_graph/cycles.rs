//! Cycles in one directory's graph: Tarjan's strongly connected sets, and
//! a shortest cycle through one to show.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use super::Edge;

/// One directory's graph: `from -> to -> the first use read`.
pub(super) type Graph = BTreeMap<String, BTreeMap<String, Edge>>;

/// Tarjan's strongly connected components.
pub(super) fn strongly_connected(graph: &Graph) -> Vec<BTreeSet<String>> {
    struct State<'g> {
        graph: &'g Graph,
        index: HashMap<&'g str, usize>,
        low: HashMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        next: usize,
        components: Vec<BTreeSet<String>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        if let Some(out) = s.graph.get(v) {
            for w in out.keys() {
                let w = w.as_str();
                if !s.index.contains_key(w) {
                    visit(s, w);
                    let low = s.low[v].min(s.low[w]);
                    s.low.insert(v, low);
                } else if s.on_stack.contains(w) {
                    let low = s.low[v].min(s.index[w]);
                    s.low.insert(v, low);
                }
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = BTreeSet::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.insert(w.to_string());
                if w == v {
                    break;
                }
            }
            s.components.push(component);
        }
    }
    let mut s = State {
        graph,
        index: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        components: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.components
}

/// A shortest cycle through the first member of `members`, staying within
/// them.
pub(super) fn shortest_cycle(graph: &Graph, members: &BTreeSet<String>) -> Vec<Edge> {
    let Some(start) = members.first() else {
        return Vec::new();
    };
    let mut came_from: HashMap<&str, &Edge> = HashMap::new();
    let mut queue = VecDeque::from([start.as_str()]);
    while let Some(v) = queue.pop_front() {
        for (w, edge) in graph.get(v).into_iter().flatten() {
            if !members.contains(w) || came_from.contains_key(w.as_str()) {
                continue;
            }
            came_from.insert(w, edge);
            if w == start {
                queue.clear();
                break;
            }
            queue.push_back(w);
        }
    }
    let mut steps = Vec::new();
    let mut at = start.as_str();
    while let Some(edge) = came_from.get(at) {
        steps.push((*edge).clone());
        at = edge.from.as_str();
        if at == start {
            break;
        }
    }
    steps.reverse();
    steps
}
