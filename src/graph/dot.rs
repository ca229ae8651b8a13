//! Graphviz export: [`Graph::to_dot`] writes the arena as a DOT digraph, one node per graph
//! node and one edge per operand, for `dot -Tsvg` (Gorgonia's `ToDot`).
//!
//! Inputs are ellipses, parameters and buffers boxes with their names, constants small
//! boxes (a one-element constant shows its value); an op shows its name and shape, with
//! the run-time axis written `≤B`. Nodes recorded by [`Graph::grad`] are drawn red and
//! dashed, each run of them inside a dashed cluster labelled `grad` (all but the zeros it
//! gives a tensor the output does not depend on: see `grad_with`); invalid nodes (a
//! recording error) are filled red; the outputs of [`Graph::to_dot_of`] have a double
//! border. Each node's tooltip (hover in an SVG) says where it was recorded.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;

use super::{Graph, Kind, Node};
use crate::graph::Tensor;
use crate::scalar::Scalar;
use crate::shape::Shape;

impl<T: Scalar> Graph<T> {
    /// The whole graph as Graphviz DOT text (render it with `dot -Tsvg graph.dot`): a node
    /// per graph node labelled with its op (or its name, for inputs, parameters and
    /// buffers) and its shape (`≤256×10`: a run-time axis of up to 256 rows), an edge from
    /// each operand; gradient nodes (recorded by [`grad`](Graph::grad)) red, dashed and
    /// grouped in dashed clusters. See [`to_dot_of`](Graph::to_dot_of) for only what some
    /// outputs need.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f32>::new();
    /// let x = g.input("x", (Dim::upto(8), 3));
    /// let w = g.param("w", tapegrad::ndarray::Array2::zeros((3, 2)));
    /// let loss = x.matmul(w).relu().mean();
    /// let grads = g.grad(loss, &[w])?;
    /// let dot = g.to_dot();
    /// assert!(dot.starts_with("digraph tapegrad {"));
    /// assert!(dot.contains("label=\"w\\nparameter\\n3×2\""));
    /// assert!(dot.contains("label=\"matmul\\n≤8×2\""));
    /// assert!(dot.contains("subgraph cluster_grad_")); // the gradient's nodes
    /// # let _ = grads;
    /// # Ok::<(), tapegrad::Error>(())
    /// ```
    pub fn to_dot(&self) -> String {
        let n = self.len();
        self.dot(&vec![true; n], &[])
    }

    /// As [`to_dot`](Graph::to_dot), drawing only `outputs` and the nodes they are computed
    /// from; the outputs get a double border. Tensors of another graph are left out.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let g = Graph::<f32>::new();
    /// let x = g.input("x", [2]);
    /// let y = x.exp();
    /// let _unused = x.tanh();
    /// let dot = g.to_dot_of(&[y]);
    /// assert!(dot.contains("exp") && !dot.contains("tanh"));
    /// ```
    pub fn to_dot_of(&self, outputs: &[Tensor<'_, T>]) -> String {
        let nodes = self.nodes();
        let mut keep = vec![false; nodes.len()];
        let mut outs = Vec::new();
        for t in outputs.iter().filter(|t| t.graph.id == self.id) {
            keep[t.id.index()] = true;
            outs.push(t.id.index());
        }
        // ids only point back: one pass from the last node down reaches every operand
        for i in (0..nodes.len()).rev() {
            if keep[i] {
                for j in &nodes[i].inputs {
                    keep[j.index()] = true;
                }
            }
        }
        drop(nodes);
        self.dot(&keep, &outs)
    }

    fn dot(&self, keep: &[bool], outputs: &[usize]) -> String {
        let nodes = self.nodes();
        let mut s = String::from(
            "digraph tapegrad {\n  rankdir=TB;\n  \
             node [shape=box, style=\"rounded,filled\", fillcolor=\"#f4f4f4\", \
             fontname=\"Helvetica\", fontsize=10];\n  \
             edge [color=\"#555555\", arrowsize=0.6];\n",
        );
        let mut in_cluster = false;
        for (i, node) in nodes.iter().enumerate() {
            if !keep[i] {
                continue;
            }
            match (node.is_grad(), in_cluster) {
                (true, false) => {
                    let _ = writeln!(
                        s,
                        "  subgraph cluster_grad_{i} {{\n    label=\"grad\"; style=dashed; \
                         color=\"#c0392b\"; fontcolor=\"#c0392b\"; fontname=\"Helvetica\";"
                    );
                }
                (false, true) => s.push_str("  }\n"),
                _ => {}
            }
            in_cluster = node.is_grad();
            let indent = if in_cluster { "    " } else { "  " };
            let style = style(node, outputs.contains(&i));
            let label = escape(&label(node));
            let c = node.caller();
            let tip = escape(&format!(
                "#{i} {} at {}:{}:{}",
                kind(node),
                c.file,
                c.line,
                c.column
            ));
            let _ = writeln!(
                s,
                "{indent}n{i} [label=\"{label}\", tooltip=\"{tip}\"{style}];"
            );
        }
        if in_cluster {
            s.push_str("  }\n");
        }
        for (i, node) in nodes.iter().enumerate() {
            if !keep[i] {
                continue;
            }
            for j in &node.inputs {
                let dashed = if node.is_grad() {
                    " [style=dashed]"
                } else {
                    ""
                };
                let _ = writeln!(s, "  n{} -> n{i}{dashed};", j.index());
            }
        }
        s.push_str("}\n");
        s
    }
}

/// What the node is: its op's name, or the kind of leaf.
fn kind<T: Scalar>(node: &Node<T>) -> &'static str {
    node.kind.name()
}

/// The label's lines: the name of a leaf and its kind, or the op; then the shape.
fn label<T: Scalar>(node: &Node<T>) -> String {
    let shape = dims(&node.shape);
    match &node.kind {
        Kind::Input { name } | Kind::Param { name, .. } | Kind::Buffer { name, .. } => {
            format!("{name}\n{}\n{shape}", kind(node))
        }
        Kind::Const(v) if v.len() == 1 => match v.iter().next() {
            Some(v) => format!("{v}\n{shape}"),
            None => format!("constant\n{shape}"),
        },
        _ => format!("{}\n{shape}", kind(node)),
    }
}

/// Extra attributes by kind: leaves coloured, gradient nodes red and dashed, outputs with
/// a double border.
fn style<T: Scalar>(node: &Node<T>, output: bool) -> String {
    let mut a = String::from(match node.kind {
        Kind::Input { .. } => ", shape=ellipse, fillcolor=\"#cfe2ff\"",
        Kind::Param { .. } => ", fillcolor=\"#ffe8a8\", penwidth=1.5",
        Kind::Buffer { .. } => ", fillcolor=\"#e2d4f0\"",
        Kind::Const(_) => ", fillcolor=\"#ffffff\", fontsize=8",
        Kind::Invalid => ", fillcolor=\"#f5b7b1\"",
        Kind::Op(_) => "",
    });
    if node.is_grad() {
        a.push_str(", style=\"rounded,filled,dashed\", color=\"#c0392b\", fontcolor=\"#922b21\"");
    }
    if output {
        a.push_str(", peripheries=2");
    }
    a
}

/// A shape as `≤256×64` (`≤`: the run-time axis and its bound), `scalar` for `[]`.
fn dims(shape: &Shape) -> String {
    if shape.rank() == 0 {
        return String::from("scalar");
    }
    let mut s = String::new();
    for (a, d) in shape.dims().iter().enumerate() {
        if a > 0 {
            s.push('×');
        }
        if shape.run_axis() == Some(a) {
            s.push('≤');
        }
        let _ = write!(s, "{d}");
    }
    s
}

/// `s` inside a DOT double-quoted string: quotes and backslashes escaped, line breaks as
/// `\n` (centred lines), other control characters dropped.
fn escape(s: &str) -> String {
    let mut e = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => e.push_str("\\\""),
            '\\' => e.push_str("\\\\"),
            '\n' => e.push_str("\\n"),
            c if c.is_control() => {}
            c => e.push(c),
        }
    }
    e
}

#[cfg(test)]
mod tests;
