//! The kubeconfig that points a client at a running simulator.

use base64::Engine as _;

/// Renders a kubeconfig with one cluster, user and context named `kube-sim`.
pub fn render(server: &str, token: &str, ca_pem: Option<&str>) -> String {
    // JSON strings are valid YAML scalars, so quoting through serde_json is safe for any token.
    let quote = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
    let ca_line = match ca_pem {
        Some(pem) => format!(
            "    certificate-authority-data: {}\n",
            base64::engine::general_purpose::STANDARD.encode(pem.as_bytes())
        ),
        None => String::new(),
    };
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: kube-sim
  cluster:
    server: {server}
{ca_line}users:
- name: kube-sim
  user:
    token: {token}
contexts:
- name: kube-sim
  context:
    cluster: kube-sim
    user: kube-sim
    namespace: default
current-context: kube-sim
preferences: {{}}
",
        server = quote(server),
        token = quote(token),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kubeconfig_is_yaml_with_server_and_token() {
        let text = render("http://127.0.0.1:1234", "t\"ok", None);
        let doc: serde_json::Value = serde_norway::from_str(&text).unwrap();
        assert_eq!(
            doc.pointer("/clusters/0/cluster/server"),
            Some(&serde_json::json!("http://127.0.0.1:1234"))
        );
        assert_eq!(
            doc.pointer("/users/0/user/token"),
            Some(&serde_json::json!("t\"ok"))
        );
    }
}
