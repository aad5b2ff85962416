//! The route table: which operation (Cedar action and resource) a request performs, from its
//! method and path. The verifier requires the warrant to be for exactly that operation; a
//! client computes it from the same table to know what to sign.
//!
//! ```toml
//! [[route]]
//! method = "POST"
//! path = "/v1/deploy/{env}"
//! action = "deploy"
//! resource = "{env}/api"
//! ```
//!
//! A `{name}` segment of `path` matches one non-empty path segment, as sent (percent-encoded
//! bytes stay encoded); `action` and `resource` may use the names `path` binds. Routes are tried
//! in file order; a request no route matches is refused. Without a table, every request is its
//! own operation: action = the method, resource = the path.

use std::path::Path;

use serde::Deserialize;

use crate::Error;

/// The largest route table file read.
const MAX_FILE: u64 = 1024 * 1024;

/// The operation a request performs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// The Cedar action id.
    pub action: String,
    /// The Cedar resource id.
    pub resource: String,
}

/// Maps requests to operations (see the module documentation).
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    /// `None`: the default mapping (method, path).
    routes: Option<Vec<Route>>,
}

#[derive(Debug, Clone)]
struct Route {
    method: String,
    segments: Vec<Segment>,
    action: Vec<Piece>,
    resource: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Param(usize),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    route: Vec<RouteEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteEntry {
    method: String,
    path: String,
    action: String,
    resource: String,
}

impl RouteTable {
    /// The table read from a TOML file (see the module documentation).
    pub fn read(path: &Path) -> Result<Self, Error> {
        use std::io::Read;
        let io = |source| Error::Io { path: path.to_owned(), source };
        let mut text = String::new();
        std::fs::File::open(path).and_then(|f| f.take(MAX_FILE + 1).read_to_string(&mut text)).map_err(io)?;
        if text.len() as u64 > MAX_FILE {
            return Err(Error::BadFile {
                path: path.to_owned(),
                reason: format!("larger than {MAX_FILE} bytes"),
            });
        }
        Self::from_toml(&text)
    }

    /// The table in `text` (TOML, see the module documentation).
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let file: File = toml::from_str(text).map_err(|e| Error::Routes(e.to_string()))?;
        let routes = file
            .route
            .into_iter()
            .enumerate()
            .map(|(i, entry)| {
                Route::parse(entry).map_err(|reason| Error::Routes(format!("route {}: {reason}", i + 1)))
            })
            .collect::<Result<Vec<Route>, _>>()?;
        check_order(&routes)?;
        Ok(Self { routes: Some(routes) })
    }

    /// The operation `method` on `path` performs; [`Error::NoRoute`] when no route matches.
    pub fn operation(&self, method: &str, path: &str) -> Result<Operation, Error> {
        let Some(routes) = &self.routes else {
            return Ok(Operation { action: method.to_owned(), resource: path.to_owned() });
        };
        let segments: Vec<&str> = path.split('/').collect();
        routes
            .iter()
            .find_map(|route| route.apply(method, &segments))
            .ok_or_else(|| Error::NoRoute { method: method.to_owned(), path: path.to_owned() })
    }
}

/// Refuses a table in which the first match is not the most specific route: routers (axum,
/// Spring, werkzeug) prefer a literal segment to a parameter, so with `/v1/items/{id}` listed
/// before `/v1/items/purge` the gate would verify `update` on `items/purge` while the service
/// runs `purge`. A route that can never match, and two routes that overlap with neither more
/// specific, are refused as well.
fn check_order(routes: &[Route]) -> Result<(), Error> {
    for (j, later) in routes.iter().enumerate() {
        for (i, earlier) in routes[..j].iter().enumerate() {
            if !earlier.overlaps(later) {
                continue;
            }
            let problem = if later.covers(earlier) && !earlier.covers(later) {
                continue; // the more specific route comes first: the order routers use
            } else if earlier.covers(later) {
                "can never match: route {i} matches every request it does"
            } else {
                "overlaps route {i} with neither more specific: a router may choose either"
            };
            return Err(Error::Routes(format!(
                "route {} ({} {}) {}",
                j + 1,
                later.method,
                later.path(),
                problem.replace("{i}", &(i + 1).to_string())
            )));
        }
    }
    Ok(())
}

impl Route {
    /// Some request matches both.
    fn overlaps(&self, other: &Route) -> bool {
        self.method == other.method
            && self.segments.len() == other.segments.len()
            && self.segments.iter().zip(&other.segments).all(|pair| match pair {
                (Segment::Literal(a), Segment::Literal(b)) => a == b,
                _ => true,
            })
    }

    /// Every request `other` matches, this matches.
    fn covers(&self, other: &Route) -> bool {
        self.overlaps(other)
            && self
                .segments
                .iter()
                .zip(&other.segments)
                .all(|pair| !matches!(pair, (Segment::Literal(_), Segment::Param(_))))
    }

    /// The path template, for messages.
    fn path(&self) -> String {
        self.segments
            .iter()
            .map(|segment| match segment {
                Segment::Literal(text) => text.clone(),
                Segment::Param(name) => format!("{{{name}}}"),
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    fn parse(entry: RouteEntry) -> Result<Self, String> {
        if entry.method.is_empty() || !entry.method.bytes().all(|c| c.is_ascii_uppercase()) {
            return Err(format!("method {:?} is not an upper-case HTTP method", entry.method));
        }
        if !entry.path.starts_with('/') {
            return Err(format!("path {:?} does not start with /", entry.path));
        }
        let mut params: Vec<String> = Vec::new();
        let mut segments = Vec::new();
        for segment in entry.path.split('/') {
            match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => {
                    check_name(name)?;
                    if params.iter().any(|p| p == name) {
                        return Err(format!("path {:?} names {{{name}}} twice", entry.path));
                    }
                    params.push(name.to_owned());
                    segments.push(Segment::Param(name.to_owned()));
                }
                None if segment.contains(['{', '}']) => {
                    return Err(format!(
                        "path {:?}: a parameter must be a whole segment, {{name}}",
                        entry.path
                    ))
                }
                None => segments.push(Segment::Literal(segment.to_owned())),
            }
        }
        let action = template(&entry.action, &params).map_err(|e| format!("action: {e}"))?;
        let resource = template(&entry.resource, &params).map_err(|e| format!("resource: {e}"))?;
        Ok(Self { method: entry.method, segments, action, resource })
    }

    fn apply(&self, method: &str, segments: &[&str]) -> Option<Operation> {
        if method != self.method || segments.len() != self.segments.len() {
            return None;
        }
        let mut bound = Vec::new();
        for (pattern, segment) in self.segments.iter().zip(segments) {
            match pattern {
                Segment::Literal(literal) if literal == segment => {}
                Segment::Param(_) if !segment.is_empty() => bound.push(*segment),
                _ => return None,
            }
        }
        let fill = |pieces: &[Piece]| {
            pieces
                .iter()
                .map(|piece| match piece {
                    Piece::Text(text) => text.as_str(),
                    Piece::Param(i) => bound.get(*i).copied().unwrap_or_default(),
                })
                .collect::<String>()
        };
        Some(Operation { action: fill(&self.action), resource: fill(&self.resource) })
    }
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
        return Err(format!("parameter name {name:?} is not letters, digits and _"));
    }
    Ok(())
}

/// `text` split into literal text and `{name}` references to `params`.
fn template(text: &str, params: &[String]) -> Result<Vec<Piece>, String> {
    if text.is_empty() {
        return Err("empty".into());
    }
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let (before, after) = rest.split_at(open);
        if before.contains('}') {
            return Err(format!("{text:?} has an unmatched }}"));
        }
        if !before.is_empty() {
            pieces.push(Piece::Text(before.to_owned()));
        }
        let close = after.find('}').ok_or_else(|| format!("{text:?} has an unmatched {{"))?;
        let name = &after[1..close];
        check_name(name)?;
        let index = params
            .iter()
            .position(|p| p == name)
            .ok_or_else(|| format!("{text:?} uses {{{name}}}, which the path does not bind"))?;
        pieces.push(Piece::Param(index));
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err(format!("{text:?} has an unmatched }}"));
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_owned()));
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = r#"
[[route]]
method = "POST"
path = "/v1/deploy/{env}"
action = "deploy"
resource = "{env}/api"

[[route]]
method = "GET"
path = "/v1/docs/{team}/{doc}"
action = "read"
resource = "docs/{team}/{doc}"

[[route]]
method = "GET"
path = "/"
action = "read"
resource = "index"
"#;

    fn op(action: &str, resource: &str) -> Operation {
        Operation { action: action.into(), resource: resource.into() }
    }

    #[test]
    fn routes_map_requests_to_operations() {
        let table = RouteTable::from_toml(TABLE).unwrap();
        assert_eq!(table.operation("POST", "/v1/deploy/prod").unwrap(), op("deploy", "prod/api"));
        assert_eq!(table.operation("GET", "/v1/docs/ops/a%20b").unwrap(), op("read", "docs/ops/a%20b"));
        assert_eq!(table.operation("GET", "/").unwrap(), op("read", "index"));
    }

    fn route(method: &str, path: &str, action: &str) -> String {
        format!(
            "[[route]]\nmethod = \"{method}\"\npath = \"{path}\"\naction = \"{action}\"\nresource = \"r\"\n"
        )
    }

    #[test]
    fn the_first_match_is_the_most_specific_route_or_the_table_is_refused() {
        // Literal before parameter: the order routers use.
        let good =
            [route("POST", "/v1/items/purge", "purge"), route("POST", "/v1/items/{id}", "update")].concat();
        let table = RouteTable::from_toml(&good).unwrap();
        assert_eq!(table.operation("POST", "/v1/items/purge").unwrap().action, "purge");
        assert_eq!(table.operation("POST", "/v1/items/42").unwrap().action, "update");
        // The other way round the gate would verify `update` where the service runs `purge`.
        let shadowed =
            [route("POST", "/v1/items/{id}", "update"), route("POST", "/v1/items/purge", "purge")].concat();
        let err = RouteTable::from_toml(&shadowed).unwrap_err().to_string();
        assert!(err.contains("route 2 (POST /v1/items/purge) can never match: route 1"), "{err}");
        let twice = [route("GET", "/a/{x}", "a"), route("GET", "/a/{y}", "b")].concat();
        assert!(RouteTable::from_toml(&twice).unwrap_err().to_string().contains("can never match"));
        let crossed = [route("GET", "/{a}/x", "a"), route("GET", "/items/{b}", "b")].concat();
        let err = RouteTable::from_toml(&crossed).unwrap_err().to_string();
        assert!(err.contains("overlaps route 1 with neither more specific"), "{err}");
        // Other methods or lengths do not overlap.
        let apart =
            [route("GET", "/a/{x}", "a"), route("POST", "/a/b", "b"), route("GET", "/a/b/c", "c")].concat();
        assert!(RouteTable::from_toml(&apart).is_ok());
    }

    #[test]
    fn a_request_no_route_matches_is_refused() {
        let table = RouteTable::from_toml(TABLE).unwrap();
        for (method, path) in [
            ("GET", "/v1/deploy/prod"),
            ("POST", "/v1/deploy"),
            ("POST", "/v1/deploy/"),
            ("POST", "/v1/deploy/prod/x"),
            ("GET", "/v1/docs/ops"),
            ("post", "/v1/deploy/prod"),
        ] {
            assert!(matches!(table.operation(method, path), Err(Error::NoRoute { .. })), "{method} {path}");
        }
        let empty = RouteTable::from_toml("").unwrap();
        assert!(matches!(empty.operation("GET", "/"), Err(Error::NoRoute { .. })));
    }

    #[test]
    fn without_a_table_the_operation_is_the_method_and_path() {
        assert_eq!(RouteTable::default().operation("PUT", "/a/b").unwrap(), op("PUT", "/a/b"));
    }

    #[test]
    fn an_invalid_table_is_refused_with_its_reason() {
        let route = |method: &str, path: &str, action: &str, resource: &str| {
            format!("[[route]]\nmethod = {method:?}\npath = {path:?}\naction = {action:?}\nresource = {resource:?}\n")
        };
        for (text, reason) in [
            (route("get", "/a", "r", "x"), "is not an upper-case HTTP method"),
            (route("GET", "a", "r", "x"), "does not start with /"),
            (route("GET", "/a/{x}/{x}", "r", "x"), "twice"),
            (route("GET", "/a/x{y}", "r", "x"), "a parameter must be a whole segment"),
            (route("GET", "/a/{x-y}", "r", "x"), "is not letters, digits and _"),
            (route("GET", "/a/{x}", "r", "{y}"), "which the path does not bind"),
            (route("GET", "/a/{x}", "r", "{x"), "unmatched {"),
            (route("GET", "/a/{x}", "r}", "x"), "unmatched }"),
            (route("GET", "/a", "", "x"), "action: empty"),
            ("[[route]]\nmethod = \"GET\"\n".to_owned(), "missing field"),
            (
                "[[route]]\nmethod = \"GET\"\npath = \"/\"\naction = \"a\"\nresource = \"r\"\nextra = 1\n"
                    .into(),
                "unknown field",
            ),
        ] {
            match RouteTable::from_toml(&text) {
                Err(Error::Routes(r)) => assert!(r.contains(reason), "{text}: {r}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
