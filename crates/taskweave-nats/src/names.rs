//! The names one namespace uses on the server: subjects, stream, consumers and buckets, all
//! derived from the namespace so that applications sharing a server never cross.

/// Checks a namespace: letters, digits, `_` and `-` (it becomes a subject token and part of
/// stream and bucket names).
pub(crate) fn check_namespace(ns: &str) -> Result<(), String> {
    if ns.is_empty()
        || !ns
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "namespace `{ns}` must be non-empty and use only letters, digits, `_` and `-`"
        ));
    }
    Ok(())
}

/// Checks a function name: it is one subject token, so no `.`, `*`, `>` or whitespace.
pub(crate) fn check_function(name: &str) -> Result<(), String> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'-'))
    {
        return Err(format!(
            "remote function name `{name}` cannot travel over NATS: use letters, digits, `_`, `-` and `::` only"
        ));
    }
    Ok(())
}

/// Checks a call id: it becomes a KV key and a message id.
pub(crate) fn check_call_id(id: &str) -> Result<(), String> {
    if id.is_empty()
        || id.len() > 200
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'='))
    {
        return Err(format!(
            "call id `{id}` must be 1 to 200 letters, digits, `-`, `_` or `=`"
        ));
    }
    Ok(())
}

/// Everything named after one namespace.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    pub(crate) namespace: String,
}

impl Names {
    pub(crate) fn call_subject(&self, function: &str) -> String {
        format!("{}.call.{function}", self.namespace)
    }

    pub(crate) fn jobs_subject(&self, function: &str) -> String {
        format!("{}.jobs.{function}", self.namespace)
    }

    pub(crate) fn jobs_filter(&self) -> String {
        format!("{}.jobs.>", self.namespace)
    }

    pub(crate) fn stream(&self) -> String {
        format!("TASKWEAVE_{}_JOBS", self.namespace)
    }

    pub(crate) fn results_bucket(&self) -> String {
        format!("TASKWEAVE_{}_RESULTS", self.namespace)
    }

    pub(crate) fn objects_bucket(&self) -> String {
        format!("TASKWEAVE_{}_OBJECTS", self.namespace)
    }

    /// The durable consumer all workers of `function` share. Consumer names cannot hold `:`
    /// reliably, so it is replaced, with a hash of the real name against collisions.
    pub(crate) fn consumer(&self, function: &str) -> String {
        let readable: String = function
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let hash = taskweave_registry::signature_hash(function, "");
        format!("{readable}_{:08x}", hash as u32)
    }

    pub(crate) fn max_deliveries_advisories(&self) -> String {
        format!(
            "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.*",
            self.stream()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_derived() {
        assert!(check_namespace("app-1_x").is_ok());
        assert!(check_namespace("a.b").is_err());
        assert!(check_namespace("").is_err());
        assert!(check_function("my_app::square").is_ok());
        assert!(check_function("a.b").is_err());
        assert!(check_function("a b").is_err());
        assert!(check_call_id("abc-1").is_ok());
        assert!(check_call_id("a.b").is_err());
        let n = Names {
            namespace: "ns".into(),
        };
        assert_eq!(n.call_subject("a::f"), "ns.call.a::f");
        assert_eq!(n.stream(), "TASKWEAVE_ns_JOBS");
        assert!(n.consumer("a::f").starts_with("a__f_"));
        assert_ne!(n.consumer("a::f"), n.consumer("a__f"));
    }
}
