//! Container logs: what `GET .../pods/{name}/log` answers. Tests write lines through
//! `POST /_sim/logs`; a simulated crash (`POST /_sim/crashloop`) ends the running container,
//! so its lines become the previous container's (`?previous=true`) and the new one starts
//! empty, as the kubelet keeps the log of the last terminated instance.

use std::collections::BTreeMap;

/// Most lines kept per container instance; older ones are dropped first.
pub const MAX_LINES: usize = 10_000;

/// The lines of one container: the running instance and the last terminated one.
#[derive(Debug, Clone, Default)]
struct ContainerLog {
    current: Vec<String>,
    previous: Option<Vec<String>>,
}

/// Logs of every container, by (namespace, pod, container).
#[derive(Debug, Clone, Default)]
pub struct Logs(BTreeMap<(String, String, String), ContainerLog>);

impl Logs {
    /// Appends `lines` to the running instance of a container.
    pub fn append(&mut self, namespace: &str, pod: &str, container: &str, lines: &[String]) {
        let log = self.entry(namespace, pod, container);
        log.current.extend(lines.iter().cloned());
        let excess = log.current.len().saturating_sub(MAX_LINES);
        log.current.drain(..excess);
    }

    /// The running instance ended: its lines become the previous instance's.
    pub fn restart(&mut self, namespace: &str, pod: &str, container: &str) {
        let log = self.entry(namespace, pod, container);
        log.previous = Some(std::mem::take(&mut log.current));
    }

    /// The lines of the running instance, or of the previous one (`None` when there was none),
    /// at most the last `tail` of them.
    pub fn read(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
        tail: Option<usize>,
    ) -> Option<Vec<String>> {
        let key = (namespace.to_owned(), pod.to_owned(), container.to_owned());
        let log = self.0.get(&key).cloned().unwrap_or_default();
        let lines = if previous { log.previous? } else { log.current };
        let skip = tail.map_or(0, |t| lines.len().saturating_sub(t));
        Some(lines.into_iter().skip(skip).collect())
    }

    /// Drops the logs of every container of a pod (it was deleted).
    pub fn forget_pod(&mut self, namespace: &str, pod: &str) {
        self.0
            .retain(|(ns, p, _), _| !(ns == namespace && p == pod));
    }

    fn entry(&mut self, namespace: &str, pod: &str, container: &str) -> &mut ContainerLog {
        self.0
            .entry((namespace.to_owned(), pod.to_owned(), container.to_owned()))
            .or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restart_keeps_the_last_instance_and_the_tail_counts_from_the_end() {
        let mut logs = Logs::default();
        assert_eq!(logs.read("ns", "p", "c", false, None), Some(vec![]));
        assert_eq!(logs.read("ns", "p", "c", true, None), None);
        logs.append("ns", "p", "c", &["a".into(), "b".into(), "c".into()]);
        assert_eq!(
            logs.read("ns", "p", "c", false, Some(2)).unwrap(),
            ["b", "c"]
        );
        logs.restart("ns", "p", "c");
        logs.append("ns", "p", "c", &["d".into()]);
        assert_eq!(
            logs.read("ns", "p", "c", true, None).unwrap(),
            ["a", "b", "c"]
        );
        assert_eq!(logs.read("ns", "p", "c", false, None).unwrap(), ["d"]);
    }

    #[test]
    fn a_container_keeps_at_most_its_newest_lines() {
        let mut logs = Logs::default();
        let lines: Vec<String> = (0..MAX_LINES + 5).map(|i| i.to_string()).collect();
        logs.append("ns", "p", "c", &lines);
        let kept = logs.read("ns", "p", "c", false, None).unwrap();
        assert_eq!(kept.len(), MAX_LINES);
        assert_eq!(kept[0], "5");
    }
}
