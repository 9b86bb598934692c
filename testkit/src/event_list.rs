//! The history as a doubly linked list of call and return events, from which
//! the search removes ("lifts") linearized operations and puts them back.

const HEAD: usize = 0;
/// Marks "no next node".
pub const END: usize = usize::MAX;

/// Call/return events in time order; node 0 is a sentinel head.
pub struct EventList {
    next: Vec<usize>,
    prev: Vec<usize>,
    node_op: Vec<usize>,
    node_is_call: Vec<bool>,
    call_node: Vec<usize>,
    return_node: Vec<Option<usize>>,
}

impl EventList {
    /// Builds the list from (call time, return time) per operation; `None`
    /// return times are +infinity and get no return event at all.
    pub fn new(times: &[(u64, Option<u64>)]) -> Self {
        let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(times.len() * 2);
        for (op, (call_time, return_time)) in times.iter().enumerate() {
            // Calls sort before returns at equal times: such operations overlap.
            events.push((*call_time, false, op));
            if let Some(return_time) = return_time {
                assert!(
                    return_time >= call_time,
                    "operation {op} returns before its call"
                );
                events.push((*return_time, true, op));
            }
        }
        events.sort_unstable();
        let node_count = events.len() + 1;
        let mut list = EventList {
            next: (1..=node_count).collect(),
            prev: (0..node_count).map(|node| node.wrapping_sub(1)).collect(),
            node_op: vec![usize::MAX; node_count],
            node_is_call: vec![false; node_count],
            call_node: vec![0; times.len()],
            return_node: vec![None; times.len()],
        };
        list.next[node_count - 1] = END;
        for (index, (_, is_return, op)) in events.into_iter().enumerate() {
            let node = index + 1;
            list.node_op[node] = op;
            list.node_is_call[node] = !is_return;
            if is_return {
                list.return_node[op] = Some(node);
            } else {
                list.call_node[op] = node;
            }
        }
        list
    }

    pub fn first(&self) -> usize {
        self.next[HEAD]
    }

    pub fn next(&self, node: usize) -> usize {
        self.next[node]
    }

    pub fn op(&self, node: usize) -> usize {
        self.node_op[node]
    }

    pub fn is_call(&self, node: usize) -> bool {
        self.node_is_call[node]
    }

    pub fn call_node(&self, op: usize) -> usize {
        self.call_node[op]
    }

    /// Removes both events of `op`.
    pub fn lift(&mut self, op: usize) {
        self.unlink(self.call_node[op]);
        if let Some(node) = self.return_node[op] {
            self.unlink(node);
        }
    }

    /// Restores both events of `op`; must undo the most recent `lift`.
    pub fn unlift(&mut self, op: usize) {
        if let Some(node) = self.return_node[op] {
            self.relink(node);
        }
        self.relink(self.call_node[op]);
    }

    fn unlink(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = next;
        if next != END {
            self.prev[next] = prev;
        }
    }

    fn relink(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = node;
        if next != END {
            self.prev[next] = node;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves lift removes both events and unlift restores the original order.
    #[test]
    fn lift_then_unlift_restores_order() {
        let mut list = EventList::new(&[(0, Some(3)), (1, Some(2)), (4, None)]);
        let order = |list: &EventList| {
            let mut nodes = Vec::new();
            let mut node = list.first();
            while node != END {
                nodes.push((list.op(node), list.is_call(node)));
                node = list.next(node);
            }
            nodes
        };
        let before = order(&list);
        assert_eq!(before.len(), 5);
        list.lift(1);
        assert_eq!(order(&list), vec![(0, true), (0, false), (2, true)]);
        list.lift(0);
        assert_eq!(order(&list), vec![(2, true)]);
        list.unlift(0);
        list.unlift(1);
        assert_eq!(order(&list), before);
    }
}
