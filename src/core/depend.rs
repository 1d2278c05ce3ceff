//! Order of multi-jail verbs by jail.conf `depend`, as jail(8) orders them.
//!
//! jail(8) (usr.sbin/jail/state.c, `dep_setup`, `dep_check`, `dep_done`;
//! freebsd-src 20a9e238) keeps one edge per `depend` name from the jail to
//! the jail it names. Starting a jail first starts every jail it depends on
//! (transitively, `JF_DEPEND`); stopping a jail first stops every jail that
//! depends on it (the edges are walked backwards, `JF_DO_STOP`). A name that
//! is not a defined jail fails the jail that names it ("depends on undefined
//! jail"); jails in a loop fail ("dependency loop"); when a jail fails, the
//! jails waiting on it in the direction of the operation are skipped
//! (`dep_done` marks them `JF_FAILED`), while independent ones still run.
//!
//! jnet differs in one place, on purpose: a loop or an undefined name
//! refuses the whole command before anything runs, naming the jails, since
//! a half-started set is harder to reason about than a clear refusal.
//! Hierarchical jails (jail(8)'s implied dependency of `a.b` on `a`) do not
//! arise: jnet's jail names have no dots.
//!
//! Pure: the caller supplies the graph and, for [`run`], the operation.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Which way a verb walks the `depend` edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Dependencies before the jails that need them.
    Start,
    /// Dependents before the jails they need.
    Stop,
}

/// The `depend` edges of a set of jails: jail -> the jails it names.
#[derive(Debug, Clone, Default)]
pub struct Graph<N: Ord + Clone> {
    deps: BTreeMap<N, Vec<N>>,
    rdeps: BTreeMap<N, Vec<N>>,
}

/// Why an order cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DependError<N: fmt::Display + fmt::Debug> {
    #[error("jail {jail} depends on undefined jail {missing}")]
    Undefined { jail: N, missing: N },
    #[error("dependency loop: {}", join_cycle(.0))]
    Cycle(Vec<N>),
    #[error("jail {0} is not defined")]
    Unknown(N),
}

fn join_cycle<N: fmt::Display>(cycle: &[N]) -> String {
    let mut s: Vec<String> = cycle.iter().map(|n| n.to_string()).collect();
    if let Some(first) = s.first().cloned() {
        s.push(first);
    }
    s.join(" -> ")
}

impl<N: Ord + Clone + fmt::Display + fmt::Debug> Graph<N> {
    /// Builds the graph from each defined jail and the names in its
    /// `depend` list. A name no jail defines is an error, as in jail(8).
    pub fn new(jails: impl IntoIterator<Item = (N, Vec<N>)>) -> Result<Self, DependError<N>> {
        let mut deps: BTreeMap<N, Vec<N>> = BTreeMap::new();
        for (jail, names) in jails {
            deps.entry(jail).or_default().extend(names);
        }
        let mut rdeps: BTreeMap<N, Vec<N>> = deps.keys().map(|k| (k.clone(), Vec::new())).collect();
        for (jail, names) in &mut deps {
            let mut seen = BTreeSet::new();
            names.retain(|n| seen.insert(n.clone()));
            for name in names.iter() {
                match rdeps.get_mut(name) {
                    Some(r) => r.push(jail.clone()),
                    None => {
                        return Err(DependError::Undefined {
                            jail: jail.clone(),
                            missing: name.clone(),
                        })
                    }
                }
            }
        }
        Ok(Graph { deps, rdeps })
    }

    pub fn contains(&self, jail: &N) -> bool {
        self.deps.contains_key(jail)
    }

    /// The jails `jail` waits for in `dir`: what it depends on when
    /// starting, what depends on it when stopping.
    pub fn waits_for(&self, jail: &N, dir: Direction) -> &[N] {
        let map = match dir {
            Direction::Start => &self.deps,
            Direction::Stop => &self.rdeps,
        };
        map.get(jail).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every jail the verb touches for `targets`, in an order where each
    /// jail comes after all it waits for. Among jails free to go, targets
    /// keep the order given and pulled-in jails come by name, so the order
    /// is deterministic. A loop among the touched jails is an error naming
    /// the jails in it.
    pub fn order(&self, targets: &[N], dir: Direction) -> Result<Vec<N>, DependError<N>> {
        // Closure over the waited-for jails.
        let mut touched = BTreeSet::new();
        let mut stack: Vec<N> = Vec::new();
        for t in targets {
            if !self.contains(t) {
                return Err(DependError::Unknown(t.clone()));
            }
            if touched.insert(t.clone()) {
                stack.push(t.clone());
            }
        }
        while let Some(j) = stack.pop() {
            for w in self.waits_for(&j, dir) {
                if touched.insert(w.clone()) {
                    stack.push(w.clone());
                }
            }
        }
        // Kahn's algorithm restricted to the touched set; ready jails are
        // taken in "rank" order: targets first as given, then by name.
        let rank: BTreeMap<&N, usize> = targets.iter().enumerate().map(|(i, t)| (t, i)).collect();
        let key = |n: &N| (rank.get(n).copied().unwrap_or(usize::MAX), n.clone());
        let mut pending: BTreeMap<N, usize> = touched
            .iter()
            .map(|j| (j.clone(), self.waits_for(j, dir).len()))
            .collect();
        let mut ready: BTreeSet<(usize, N)> = pending.iter().filter(|(_, &c)| c == 0).map(|(j, _)| key(j)).collect();
        let mut out = Vec::with_capacity(touched.len());
        let other = match dir {
            Direction::Start => Direction::Stop,
            Direction::Stop => Direction::Start,
        };
        while let Some(first) = ready.iter().next().cloned() {
            ready.remove(&first);
            let j = first.1;
            pending.remove(&j);
            for next in self.waits_for(&j, other) {
                if let Some(c) = pending.get_mut(next) {
                    *c -= 1;
                    if *c == 0 {
                        ready.insert(key(next));
                    }
                }
            }
            out.push(j);
        }
        if pending.is_empty() {
            Ok(out)
        } else {
            Err(DependError::Cycle(
                self.find_cycle(&pending.keys().cloned().collect(), dir),
            ))
        }
    }

    /// One loop among `left` (jails Kahn's algorithm could not order; each
    /// still waits for another of them), smallest name first.
    fn find_cycle(&self, left: &BTreeSet<N>, dir: Direction) -> Vec<N> {
        let Some(start) = left.iter().next() else {
            return Vec::new();
        };
        // Walk waited-for edges inside `left` until a jail repeats.
        let mut path: Vec<N> = vec![start.clone()];
        let mut pos: BTreeMap<N, usize> = BTreeMap::from([(start.clone(), 0)]);
        let mut cur = start.clone();
        loop {
            let next = self.waits_for(&cur, dir).iter().find(|w| left.contains(*w)).cloned();
            let Some(next) = next else { return path };
            if let Some(&i) = pos.get(&next) {
                let mut cycle = path.split_off(i);
                // Start at the smallest name for a stable message.
                let min = cycle
                    .iter()
                    .enumerate()
                    .min_by(|a, b| a.1.cmp(b.1))
                    .map(|(i, _)| i)
                    .unwrap_or(0);
                cycle.rotate_left(min);
                return cycle;
            }
            pos.insert(next.clone(), path.len());
            path.push(next.clone());
            cur = next;
        }
    }
}

/// What happened to one jail of a multi-jail verb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<N> {
    /// The operation ran and succeeded (or found nothing to do).
    Done,
    /// The operation ran and failed.
    Failed,
    /// Not attempted: a jail it waits for failed or was skipped.
    Skipped { because: N },
}

/// Runs `op` on each jail of `order` (from [`Graph::order`]), skipping a
/// jail when one it waits for in `dir` did not succeed, as jail(8)'s
/// `dep_done` does. Independent jails still run.
pub fn run<N: Ord + Clone + fmt::Display + fmt::Debug>(
    graph: &Graph<N>,
    order: &[N],
    dir: Direction,
    mut op: impl FnMut(&N) -> bool,
) -> Vec<(N, Outcome<N>)> {
    let mut result: BTreeMap<N, bool> = BTreeMap::new();
    let mut out = Vec::with_capacity(order.len());
    for j in order {
        let blocked = graph
            .waits_for(j, dir)
            .iter()
            .find(|w| result.get(*w) == Some(&false))
            .cloned();
        let outcome = match blocked {
            Some(because) => Outcome::Skipped { because },
            None if op(j) => Outcome::Done,
            None => Outcome::Failed,
        };
        result.insert(j.clone(), outcome == Outcome::Done);
        out.push((j.clone(), outcome));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn g(edges: &[(&'static str, &[&'static str])]) -> Graph<&'static str> {
        Graph::new(edges.iter().map(|(j, d)| (*j, d.to_vec()))).unwrap()
    }

    #[test]
    fn start_pulls_in_dependencies_first() {
        // www needs db and cache; db needs base.
        let gr = g(&[
            ("www", &["db", "cache"]),
            ("db", &["base"]),
            ("cache", &[]),
            ("base", &[]),
            ("mail", &[]),
        ]);
        assert_eq!(
            gr.order(&["www"], Direction::Start).unwrap(),
            vec!["base", "cache", "db", "www"]
        );
        // Only what the target needs: mail is untouched.
        assert_eq!(gr.order(&["db"], Direction::Start).unwrap(), vec!["base", "db"]);
    }

    #[test]
    fn stop_stops_dependents_first() {
        let gr = g(&[("www", &["db"]), ("api", &["db"]), ("db", &["base"]), ("base", &[])]);
        assert_eq!(gr.order(&["db"], Direction::Stop).unwrap(), vec!["api", "www", "db"]);
        assert_eq!(
            gr.order(&["base"], Direction::Stop).unwrap(),
            vec!["api", "www", "db", "base"]
        );
    }

    #[test]
    fn all_starts_in_dependency_order_and_stops_in_reverse_dependency_order() {
        let gr = g(&[("a", &["b"]), ("b", &["c"]), ("c", &[]), ("d", &[])]);
        let all = ["a", "b", "c", "d"];
        let start = gr.order(&all, Direction::Start).unwrap();
        let stop = gr.order(&all, Direction::Stop).unwrap();
        assert_eq!(start, vec!["c", "b", "a", "d"]);
        assert_eq!(stop, vec!["a", "b", "c", "d"]);
    }

    #[test]
    fn targets_keep_their_given_order_when_free() {
        let gr = g(&[("x", &[]), ("y", &[]), ("z", &[])]);
        assert_eq!(
            gr.order(&["z", "x", "y"], Direction::Start).unwrap(),
            vec!["z", "x", "y"]
        );
    }

    #[test]
    fn a_loop_is_refused_naming_its_jails() {
        let gr = g(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &[]), ("e", &["a"])]);
        let err = gr.order(&["e", "d"], Direction::Start).unwrap_err();
        assert_eq!(err, DependError::Cycle(vec!["a", "b", "c"]));
        assert_eq!(err.to_string(), "dependency loop: a -> b -> c -> a");
        // A target outside the loop and not reaching it is fine.
        assert_eq!(gr.order(&["d"], Direction::Start).unwrap(), vec!["d"]);
        // Self-dependency is a loop of one.
        let gr = g(&[("s", &["s"])]);
        assert_eq!(
            gr.order(&["s"], Direction::Stop).unwrap_err(),
            DependError::Cycle(vec!["s"])
        );
    }

    #[test]
    fn an_undefined_dependency_is_refused() {
        let err = Graph::new([("www", vec!["nosuch"])]).unwrap_err();
        assert_eq!(err.to_string(), "jail www depends on undefined jail nosuch");
        let gr = g(&[("a", &[])]);
        assert_eq!(
            gr.order(&["b"], Direction::Start).unwrap_err(),
            DependError::Unknown("b")
        );
    }

    #[test]
    fn a_failure_skips_the_jails_waiting_on_it_and_spares_independent_ones() {
        let gr = g(&[("www", &["db"]), ("api", &["www"]), ("db", &[]), ("mail", &[])]);
        let order = gr.order(&["api", "mail"], Direction::Start).unwrap();
        // Free targets go first (mail), then what the others pull in.
        assert_eq!(order, vec!["mail", "db", "www", "api"]);
        let mut ran = Vec::new();
        let res = run(&gr, &order, Direction::Start, |j| {
            ran.push(*j);
            *j != "db"
        });
        assert_eq!(ran, vec!["mail", "db"]);
        assert_eq!(
            res,
            vec![
                ("mail", Outcome::Done),
                ("db", Outcome::Failed),
                ("www", Outcome::Skipped { because: "db" }),
                ("api", Outcome::Skipped { because: "www" }),
            ]
        );
    }

    #[test]
    fn a_failed_stop_keeps_the_jails_it_needs_running() {
        let gr = g(&[("www", &["db"]), ("db", &[])]);
        let order = gr.order(&["db"], Direction::Stop).unwrap();
        let res = run(&gr, &order, Direction::Stop, |j| *j != "www");
        assert_eq!(
            res,
            vec![("www", Outcome::Failed), ("db", Outcome::Skipped { because: "www" })]
        );
    }

    proptest! {
        /// On random acyclic graphs (edges only to lower-numbered jails),
        /// every order contains exactly the closure and respects each edge.
        #[test]
        fn orders_respect_every_edge(
            edges in proptest::collection::vec((0u8..12, 0u8..12), 0..30),
            targets in proptest::collection::vec(0u8..12, 1..4),
        ) {
            let mut deps: BTreeMap<u8, Vec<u8>> = (0..12).map(|i| (i, Vec::new())).collect();
            for (a, b) in edges {
                if a > b { deps.get_mut(&a).unwrap().push(b); }
            }
            let gr = Graph::new(deps.clone()).unwrap();
            for dir in [Direction::Start, Direction::Stop] {
                let order = gr.order(&targets, dir).unwrap();
                let pos: BTreeMap<u8, usize> = order.iter().enumerate().map(|(i, j)| (*j, i)).collect();
                prop_assert_eq!(pos.len(), order.len());
                for j in &order {
                    for w in gr.waits_for(j, dir) {
                        prop_assert!(pos[w] < pos[j], "{} must come after {}", j, w);
                    }
                }
                for t in &targets { prop_assert!(pos.contains_key(t)); }
                // Closure: nothing beyond what the targets transitively wait for.
                let mut need: BTreeSet<u8> = targets.iter().copied().collect();
                let mut stack: Vec<u8> = targets.clone();
                while let Some(j) = stack.pop() {
                    for w in gr.waits_for(&j, dir) { if need.insert(*w) { stack.push(*w); } }
                }
                prop_assert_eq!(need.len(), order.len());
            }
        }
    }
}
