//! The API reference served at `GET /docs`: plain HTML rendered on the server from the
//! service's own OpenAPI document, once, at start-up.
//!
//! The page needs no JavaScript, no font and nothing from another host, so it reads the same
//! on an air-gapped network as anywhere else. It lists every operation by tag (method, path,
//! summary, description, authentication, parameters, request body, responses) and every
//! component schema with its properties; schema references are links within the page. The
//! machine-readable document stays at `openapi.json`, next to it, for tools.
//!
//! Every string that comes from the document is HTML-escaped. Descriptions are shown as plain
//! paragraphs; the only markup kept from them is a backticked `code span`.
//!
//! ```
//! let doc = serde_json::json!({
//!     "openapi": "3.1.0",
//!     "info": {"title": "Demo", "version": "1.0.0"},
//!     "paths": {"/ping": {"get": {"summary": "Liveness <probe>", "responses": {}}}}
//! });
//! let html = aegis_common::api_reference::render(&doc);
//! assert!(html.contains("Liveness &lt;probe&gt;"));
//! assert!(!html.contains("<script"));
//! ```

use std::fmt::Write as _;

use serde_json::{Map, Value};

/// The methods an OpenAPI path item may hold, in the order the page lists them.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The page's only style sheet, inline; its SHA-256 goes into the page's CSP.
pub const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;max-width:70rem;margin:0 auto;padding:0 1rem 4rem;color:#1d1d1f}\
h1{margin-bottom:0}h2{border-bottom:1px solid #ccc;margin-top:2.5rem}\
h3{font-size:1rem;margin:1.5rem 0 .25rem}code,pre{font:13px ui-monospace,monospace}\
.m{display:inline-block;min-width:4.2rem;font-weight:700;text-transform:uppercase}\
.get{color:#0a6}.post{color:#06c}.put,.patch{color:#b60}.delete{color:#c22}\
table{border-collapse:collapse;margin:.25rem 0 .75rem}td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}\
section.op{border-left:3px solid #ddd;padding-left:.75rem;margin:1rem 0}nav li{margin:.1rem 0}\
.muted{color:#666}";

/// The reference page for `doc` (an OpenAPI 3.x document as JSON).
#[must_use]
pub fn render(doc: &Value) -> String {
    let info = &doc["info"];
    let title = text(&info["title"]);
    let version = text(&info["version"]);
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{t} API reference</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <header>\n<h1>{t}</h1>\n<p class=\"muted\">API version {v} · OpenAPI {o} · \
         the machine-readable document: <a href=\"openapi.json\">openapi.json</a></p>\n",
        t = esc(&title),
        v = esc(&version),
        o = esc(&text(&doc["openapi"])),
    );
    paragraphs(&mut out, &text(&info["description"]));
    out.push_str("</header>\n");

    let groups = by_tag(doc);
    out.push_str("<nav aria-label=\"Contents\">\n<h2>Contents</h2>\n<ul>\n");
    for (tag, ops) in &groups {
        let _ = writeln!(
            out,
            "<li><a href=\"#tag-{}\">{}</a> ({})</li>",
            anchor(tag),
            esc(tag),
            ops.len()
        );
    }
    if schemas(doc).is_some_and(|s| !s.is_empty()) {
        out.push_str("<li><a href=\"#schemas\">Schemas</a></li>\n");
    }
    out.push_str("</ul>\n</nav>\n<main>\n");

    for (tag, ops) in &groups {
        let _ = writeln!(out, "<h2 id=\"tag-{}\">{}</h2>", anchor(tag), esc(tag));
        if let Some(description) = tag_description(doc, tag) {
            paragraphs(&mut out, &description);
        }
        for op in ops {
            operation(&mut out, doc, op);
        }
    }

    if let Some(schemas) = schemas(doc).filter(|s| !s.is_empty()) {
        out.push_str("<h2 id=\"schemas\">Schemas</h2>\n");
        for (name, schema) in schemas {
            let _ = writeln!(
                out,
                "<section id=\"schema-{}\">\n<h3><code>{}</code></h3>",
                anchor(name),
                esc(name)
            );
            paragraphs(&mut out, &text(&schema["description"]));
            schema_body(&mut out, schema);
            out.push_str("</section>\n");
        }
    }
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

/// One operation of the document.
struct Op<'a> {
    method: &'static str,
    path: &'a str,
    item: &'a Value,
    op: &'a Value,
}

/// Operations grouped by their first tag (untagged ones under `other`), tags in the order the
/// document declares them, then alphabetically; within a tag, operations in the document's
/// order (paths as the document lists them, then methods in [`METHODS`] order).
fn by_tag(doc: &Value) -> Vec<(String, Vec<Op<'_>>)> {
    let mut groups: Vec<(String, Vec<Op<'_>>)> = Vec::new();
    let declared: Vec<String> = doc["tags"]
        .as_array()
        .map(|tags| tags.iter().map(|t| text(&t["name"])).collect())
        .unwrap_or_default();
    let Some(paths) = doc["paths"].as_object() else {
        return groups;
    };
    for (path, item) in paths {
        for method in METHODS {
            let Some(op) = item.get(method).filter(|o| o.is_object()) else {
                continue;
            };
            let tag = op["tags"]
                .get(0)
                .and_then(Value::as_str)
                .unwrap_or("other")
                .to_owned();
            let entry = Op {
                method,
                path,
                item,
                op,
            };
            match groups.iter_mut().find(|(t, _)| *t == tag) {
                Some((_, ops)) => ops.push(entry),
                None => groups.push((tag, vec![entry])),
            }
        }
    }
    groups.sort_by(|(a, _), (b, _)| {
        let rank = |t: &String| declared.iter().position(|d| d == t).unwrap_or(usize::MAX);
        rank(a).cmp(&rank(b)).then_with(|| a.cmp(b))
    });
    groups
}

fn tag_description(doc: &Value, tag: &str) -> Option<String> {
    doc["tags"]
        .as_array()?
        .iter()
        .find(|t| t["name"] == tag)
        .map(|t| text(&t["description"]))
        .filter(|d| !d.is_empty())
}

fn schemas(doc: &Value) -> Option<&Map<String, Value>> {
    doc["components"]["schemas"].as_object()
}

fn operation(out: &mut String, doc: &Value, op: &Op<'_>) {
    let id = text(&op.op["operationId"]);
    let summary = text(&op.op["summary"]);
    // Without an operation id, the method and path name it (both together are unique).
    let fallback = format!("{}-{}", op.method, op.path);
    let _ = write!(
        out,
        "<section class=\"op\" id=\"op-{}\">\n<h3><span class=\"m {m}\">{m}</span> <code>{}</code>",
        anchor(if id.is_empty() { &fallback } else { &id }),
        esc(op.path),
        m = op.method,
    );
    if !summary.is_empty() {
        let _ = write!(out, " — {}", esc(&summary));
    }
    out.push_str("</h3>\n");
    paragraphs(out, &text(&op.op["description"]));
    let _ = writeln!(
        out,
        "<p><strong>Authentication:</strong> {}</p>",
        authentication(doc, op.op)
    );

    let mut params: Vec<&Value> = Vec::new();
    for list in [&op.item["parameters"], &op.op["parameters"]] {
        params.extend(list.as_array().into_iter().flatten());
    }
    if !params.is_empty() {
        out.push_str(
            "<table>\n<caption class=\"muted\">Parameters</caption>\n\
             <tr><th>name</th><th>in</th><th>type</th><th>required</th><th>description</th></tr>\n",
        );
        for p in params {
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&text(&p["name"])),
                esc(&text(&p["in"])),
                type_of(&p["schema"]),
                if p["required"] == true { "yes" } else { "no" },
                inline(&text(&p["description"])),
            );
        }
        out.push_str("</table>\n");
    }

    if let Some(body) = op.op.get("requestBody") {
        out.push_str("<p><strong>Request body</strong>");
        if body["required"] == true {
            out.push_str(" (required)");
        }
        out.push_str(":</p>\n<ul>\n");
        content(out, &body["content"]);
        out.push_str("</ul>\n");
        paragraphs(out, &text(&body["description"]));
    }

    if let Some(responses) = op.op["responses"].as_object().filter(|r| !r.is_empty()) {
        out.push_str(
            "<table>\n<caption class=\"muted\">Responses</caption>\n\
             <tr><th>status</th><th>description</th><th>body</th></tr>\n",
        );
        for (status, response) in responses {
            let response = resolve(doc, response);
            let mut bodies = String::new();
            content(&mut bodies, &response["content"]);
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(status),
                inline(&text(&response["description"])),
                if bodies.is_empty() {
                    "—".to_owned()
                } else {
                    format!("<ul>{bodies}</ul>")
                },
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str("</section>\n");
}

/// `none`, or the schemes an operation accepts (its own `security`, else the document's).
fn authentication(doc: &Value, op: &Value) -> String {
    let requirements = op
        .get("security")
        .or_else(|| doc.get("security"))
        .and_then(Value::as_array);
    let Some(requirements) = requirements else {
        return "none".to_owned();
    };
    let mut alternatives: Vec<String> = Vec::new();
    for requirement in requirements {
        let Some(schemes) = requirement.as_object() else {
            continue;
        };
        if schemes.is_empty() {
            alternatives.push("none".to_owned());
            continue;
        }
        let names: Vec<String> = schemes
            .keys()
            .map(|name| {
                let scheme = &doc["components"]["securitySchemes"][name];
                let how = match text(&scheme["type"]).as_str() {
                    "http" => format!("HTTP {}", esc(&text(&scheme["scheme"]))),
                    "apiKey" => format!(
                        "API key in {} <code>{}</code>",
                        esc(&text(&scheme["in"])),
                        esc(&text(&scheme["name"]))
                    ),
                    other => esc(other),
                };
                format!("<code>{}</code> ({how})", esc(name))
            })
            .collect();
        alternatives.push(names.join(" and "));
    }
    if alternatives.is_empty() {
        "none".to_owned()
    } else {
        alternatives.join(" or ")
    }
}

/// `<li>` per media type with its schema.
fn content(out: &mut String, content: &Value) {
    let Some(media) = content.as_object() else {
        return;
    };
    for (kind, body) in media {
        let _ = write!(out, "<li><code>{}</code>", esc(kind));
        if body.get("schema").is_some() {
            let _ = write!(out, ": {}", type_of(&body["schema"]));
        }
        out.push_str("</li>\n");
    }
}

/// A component response or parameter behind a `$ref`, or the value itself.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    let Some(reference) = value["$ref"].as_str() else {
        return value;
    };
    let mut node = doc;
    for part in reference.trim_start_matches("#/").split('/') {
        node = &node[part];
    }
    if node.is_null() { value } else { node }
}

/// A schema's shape in one line: a link for a reference, `array of …`, `A | B`, an enum's
/// values, a format.
fn type_of(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return format!(
            "<a href=\"#schema-{}\"><code>{}</code></a>",
            anchor(name),
            esc(name)
        );
    }
    for (key, joiner) in [("oneOf", " | "), ("anyOf", " | "), ("allOf", " & ")] {
        if let Some(parts) = schema[key].as_array() {
            return parts.iter().map(type_of).collect::<Vec<_>>().join(joiner);
        }
    }
    if let Some(values) = schema["enum"].as_array() {
        let shown: Vec<String> = values
            .iter()
            .map(|v| format!("<code>{}</code>", esc(&v.to_string())))
            .collect();
        return format!("one of {}", shown.join(", "));
    }
    let types: Vec<String> = match &schema["type"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(ts) => ts.iter().map(text).collect(),
        _ => Vec::new(),
    };
    if types.is_empty() {
        return if schema
            .as_object()
            .is_some_and(|o| o.contains_key("properties"))
        {
            "object".to_owned()
        } else {
            "any".to_owned()
        };
    }
    types
        .iter()
        .map(|t| match t.as_str() {
            "array" => format!("array of {}", type_of(&schema["items"])),
            other => match schema["format"].as_str() {
                Some(format) => format!("{} ({})", esc(other), esc(format)),
                None => esc(other),
            },
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// A component schema: its properties as a table, or its one-line shape.
fn schema_body(out: &mut String, schema: &Value) {
    let Some(properties) = schema["properties"].as_object() else {
        let _ = writeln!(out, "<p>{}</p>", type_of(schema));
        return;
    };
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    out.push_str(
        "<table>\n<tr><th>property</th><th>type</th><th>required</th><th>description</th></tr>\n",
    );
    for (name, property) in properties {
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(name),
            type_of(property),
            if required.contains(&name.as_str()) {
                "yes"
            } else {
                "no"
            },
            inline(&text(&property["description"])),
        );
    }
    out.push_str("</table>\n");
}

/// A JSON string's text, or an empty string for anything else.
fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// Escapes text for HTML content and double-quoted attributes.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An id fragment: ASCII letters, digits, `-` and `_` as they are; any other character as
/// `.` and its code point in hex and `.`, so different names never share an anchor.
fn anchor(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            out.push(c);
        } else {
            let _ = write!(out, ".{:x}.", u32::from(c));
        }
    }
    out
}

/// Escaped text with backticked spans as `<code>`.
fn inline(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, part) in s.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{}</code>", esc(part));
        } else {
            out.push_str(&esc(part));
        }
    }
    out
}

/// One `<p>` per blank-line-separated paragraph.
fn paragraphs(out: &mut String, s: &str) {
    for paragraph in s.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
        let _ = writeln!(out, "<p>{}</p>", inline(paragraph));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn doc() -> Value {
        json!({
            "openapi": "3.1.0",
            "info": {"title": "Svc", "version": "1.2.3", "description": "First.\n\nSecond `x<y`."},
            "tags": [{"name": "zeta", "description": "Declared first."}, {"name": "alpha"}],
            "security": [{"bearerAuth": []}],
            "paths": {
                "/a/{id}": {
                    "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}],
                    "get": {
                        "tags": ["alpha"], "operationId": "get_a", "summary": "Read an <a>",
                        "responses": {
                            "200": {"description": "The a", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/A"}}}},
                            "401": {"$ref": "#/components/responses/Unauthorized"}
                        }
                    }
                },
                "/z": {"post": {
                    "tags": ["zeta"], "operationId": "post_z", "summary": "Make a z",
                    "security": [{}],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/A"}}}}},
                    "responses": {"204": {"description": "Done"}}
                }}
            },
            "components": {
                "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
                "responses": {"Unauthorized": {"description": "No valid token"}},
                "schemas": {"A": {"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string", "description": "Its `name`"},
                    "kind": {"enum": ["x", "y"]},
                    "note": {"type": ["string", "null"]}
                }}}
            }
        })
    }

    #[test]
    fn lists_every_operation_under_its_tag_in_declared_order() {
        let html = render(&doc());
        let zeta = html.find("id=\"tag-zeta\"").unwrap();
        let alpha = html.find("id=\"tag-alpha\"").unwrap();
        assert!(zeta < alpha, "declared tag order is kept");
        assert!(html.contains("<code>/a/{id}</code> — Read an &lt;a&gt;"));
        assert!(html.contains("<code>/z</code> — Make a z"));
        assert!(html.contains("<p>Second <code>x&lt;y</code>.</p>"));
    }

    #[test]
    fn shows_parameters_bodies_responses_and_authentication() {
        let html = render(&doc());
        assert!(
            html.contains(
                "<td><code>id</code></td><td>path</td><td>string (uuid)</td><td>yes</td>"
            )
        );
        assert!(html.contains("array of <a href=\"#schema-A\"><code>A</code></a>"));
        assert!(html.contains("<td>401</td><td>No valid token</td>"));
        assert!(html.contains("<code>bearerAuth</code> (HTTP bearer)"));
        // `/z` opts out of the document's security with an empty requirement.
        let z = &html[html.find("id=\"op-post_z\"").unwrap()..];
        assert!(html.contains("id=\"schema-A\""));
        assert!(z.contains("<strong>Authentication:</strong> none"));
    }

    #[test]
    fn renders_schemas_with_required_properties() {
        let html = render(&doc());
        assert!(html.contains("id=\"schema-A\""));
        assert!(html.contains(
            "<td><code>name</code></td><td>string</td><td>yes</td><td>Its <code>name</code></td>"
        ));
        assert!(html.contains("one of <code>&quot;x&quot;</code>, <code>&quot;y&quot;</code>"));
        assert!(html.contains("<td>string | null</td>"));
    }

    #[test]
    fn escapes_everything_from_the_document() {
        let hostile = json!({
            "openapi": "3.1.0",
            "info": {"title": "<script>alert(1)</script>", "version": "\"1"},
            "security": [{"<i>": []}],
            "paths": {"/x\"><img src=x>": {"get": {"summary": "<b>", "operationId": "a\"b", "responses": {}}}},
            "components": {"securitySchemes": {"<i>": {"type": "http", "scheme": "bearer<img src=x onerror=alert(1)>"}}}
        });
        let html = render(&hostile);
        assert!(!html.contains("<script>alert"));
        assert!(!html.contains("<img"));
        assert!(!html.contains("<b>"));
        assert!(
            html.contains("HTTP bearer&lt;img"),
            "the scheme is escaped too"
        );
        assert!(html.contains("id=\"op-a.22.b\""));
        // Anchors of different names never collide.
        assert_ne!(anchor("a/b"), anchor("a-b"));
        assert_ne!(anchor("é"), anchor("ü"));
    }

    #[test]
    fn tolerates_a_document_without_paths_or_components() {
        let html = render(&json!({"info": {"title": "Empty"}}));
        assert!(html.contains("<h1>Empty</h1>"));
        assert!(html.ends_with("</html>\n"));
    }
}
