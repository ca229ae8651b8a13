use alloc::string::String;
use alloc::vec::Vec;

use ndarray::{arr1, Array2};

use crate::prelude::*;

/// The node statements (`nK [...]`) of a DOT text, as (id, attributes).
fn nodes(dot: &str) -> Vec<(usize, String)> {
    dot.lines()
        .map(str::trim)
        .filter_map(|l| {
            let rest = l.strip_prefix('n')?;
            let (id, attrs) = rest.split_once(" [")?;
            Some((id.parse().ok()?, String::from(attrs)))
        })
        .collect()
}

fn edges(dot: &str) -> usize {
    dot.lines().filter(|l| l.contains(" -> ")).count()
}

/// Every line's double quotes pair up once escaped ones are skipped: a name with a quote
/// or a backslash cannot end a string early.
fn quotes_balance(dot: &str) -> bool {
    dot.lines().all(|l| {
        let (mut open, mut escaped) = (false, false);
        for c in l.chars() {
            match (c, escaped) {
                (_, true) => escaped = false,
                ('\\', false) => escaped = true,
                ('"', false) => open = !open,
                _ => {}
            }
        }
        !open && !escaped
    })
}

#[test]
fn one_statement_per_node_and_one_edge_per_operand() {
    let g = Graph::<f32>::new();
    let x = g.input("x", (Dim::upto(16), 4));
    let w = g.param("w", Array2::zeros((4, 3)));
    let b = g.param("b", arr1(&[0.0f32; 3]));
    let y = (x.matmul(w) + b).tanh().sum();
    let dot = g.to_dot();
    let found = nodes(&dot);
    // x, w, b, matmul, add (its broadcast, if any, is a node too), tanh, sum
    assert_eq!(found.len(), g.len());
    assert_eq!(
        found.iter().map(|n| n.0).collect::<Vec<_>>(),
        (0..g.len()).collect::<Vec<_>>()
    );
    let operands: usize = g.nodes().iter().map(|n| n.inputs.len()).sum();
    assert!(operands >= 5);
    assert_eq!(edges(&dot), operands);
    assert!(dot.contains("label=\"x\\ninput\\n≤16×4\""), "{dot}");
    assert!(dot.contains("label=\"w\\nparameter\\n4×3\""));
    assert!(dot.contains("label=\"tanh\\n≤16×3\""));
    assert!(dot.contains("label=\"sum\\nscalar\""));
    assert!(dot.trim_end().ends_with('}'));
    let _ = y;
}

#[test]
fn exactly_the_nodes_grad_appends_are_marked() {
    let g = Graph::<f64>::new();
    let x = g.param("x", arr1(&[0.5, -1.0]));
    let unused = g.param("unused", arr1(&[1.0]));
    let y = (x * x).exp().sum();
    let forward = g.len();
    let grads = g.grad(y, &[x, unused]).unwrap();
    let after_first = g.len();
    let zeros = grads[1].id.index();
    // second order: grad of a gradient (through a forward node of the user's), then more
    // forward nodes after it
    let s = grads[0].sum();
    let _ = g.grad(s, &[x]).unwrap();
    let after_second = g.len();
    let z = x.tanh();
    let dot = g.to_dot();
    for (i, attrs) in nodes(&dot) {
        let marked = attrs.contains("dashed") && attrs.contains("#c0392b");
        // the zeros of `unused` (see `grad_with`) are the one exception
        let by_grad = ((forward..after_first).contains(&i) && i != zeros)
            || (s.id.index() + 1..after_second).contains(&i);
        assert_eq!(marked, by_grad, "node {i}: {attrs}");
    }
    assert!(after_first > forward + 3 && after_second > s.id.index() + 3);
    assert!(z.id.index() >= after_second);
    // one cluster per run of gradient nodes
    assert_eq!(dot.matches("subgraph cluster_grad_").count(), 2);
    assert_eq!(
        dot.matches("subgraph").count(),
        dot.matches("\n  }\n").count()
    );
    // the seed (ones) is a gradient node too
    assert!(dot.contains("label=\"1\\nscalar\""), "{dot}");
}

#[test]
fn marking_leaves_callers_as_they_were() {
    let g = Graph::<f64>::new();
    let x = g.param("x", arr1(&[0.5]));
    let y = x.exp().sum();
    let line = line!() - 1;
    let _ = g.grad(y, &[x]).unwrap();
    let grad_line = line!() - 1;
    let nodes = g.nodes();
    let exp = &nodes[1];
    assert_eq!((exp.caller().line, exp.is_grad()), (line, false));
    let grad_nodes: Vec<_> = nodes.iter().filter(|n| n.is_grad()).collect();
    assert!(grad_nodes.len() >= 3);
    for n in grad_nodes {
        // an op's VJP points at the op; the seed at the call of `grad`
        let c = n.caller();
        assert!(c.column < 1000, "{c:?}");
        assert!(c.line == line || c.line == grad_line, "{c:?}");
        assert!(c.file.ends_with("tests.rs"), "{c:?}");
    }
}

#[test]
fn names_are_escaped() {
    let g = Graph::<f32>::new();
    let name = "a \"quoted\" \\ name\nsecond line\u{7}";
    let x = g.input(name, [2]);
    let _ = x.relu();
    let dot = g.to_dot();
    assert!(
        dot.contains("label=\"a \\\"quoted\\\" \\\\ name\\nsecond line\\ninput\\n2\""),
        "{dot}"
    );
    assert!(quotes_balance(&dot), "{dot}");
    assert!(!dot.contains('\u{7}'));
}

#[test]
fn to_dot_of_draws_what_the_outputs_need() {
    let g = Graph::<f32>::new();
    let x = g.input("x", [3]);
    let y = x.exp();
    let _other = x.tanh();
    let dot = g.to_dot_of(&[y]);
    let found = nodes(&dot);
    assert_eq!(found.len(), 2, "{dot}");
    assert!(found
        .iter()
        .any(|(i, a)| *i == 1 && a.contains("peripheries=2")));
    assert!(!dot.contains("tanh"));
    assert_eq!(edges(&dot), 1);
    // a tensor of another graph is left out, not an error
    let h = Graph::<f32>::new();
    let z = h.input("z", [1]);
    assert_eq!(nodes(&g.to_dot_of(&[z])).len(), 0);
}
