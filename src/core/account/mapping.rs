//! An account's subject mappings (`mappings { source: destination }`): a
//! message a client publishes on a subject that matches a source is
//! published on a destination instead, picked by weight when there are
//! several, and, for destinations that name a `cluster`, only on servers of
//! that cluster. Built when the configuration is loaded (nats-server 2.9.10
//! accounts.go `AddWeightedMappings`), then only read by the shards
//! (`selectMappedSubject`).

use super::transform::{number_wildcards, validate_destination, SubjectTransform};
use crate::subject::{has_wildcard_token, is_valid_subscribe_subject, pattern_matches};

/// One destination as configured (nats-server's `MapDest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapDestination {
    pub subject: String,
    /// Percent, 0 to 100.
    pub weight: u8,
    /// Applies only on servers of this cluster.
    pub cluster: Option<String>,
}

impl MapDestination {
    /// The whole traffic to `subject`.
    pub fn all(subject: &str) -> MapDestination {
        MapDestination {
            subject: subject.to_string(),
            weight: 100,
            cluster: None,
        }
    }
}

/// One destination ready to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The destination as written (`/accountz` shows it).
    pub subject: String,
    /// The running total of the weights up to this one (they are sorted
    /// by weight): a draw below it, and not below the previous one's,
    /// picks it. `/accountz` shows this total, as nats-server does.
    pub weight: u8,
    transform: SubjectTransform,
}

/// The mapping of one source subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub source: String,
    wildcard: bool,
    /// The destinations without a cluster, with the remainder of the
    /// weights kept on the source subject unless it was listed itself.
    pub destinations: Vec<Destination>,
    /// Per cluster name, the destinations that name it (each list
    /// completed as `destinations` is); they replace `destinations` on a
    /// server of that cluster.
    pub by_cluster: Vec<(String, Vec<Destination>)>,
}

/// What [`Mappings::select`] did with a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapped {
    /// No mapping matches: publish as is.
    Unchanged,
    /// Publish on the subject written into the buffer instead.
    Renamed,
    /// The draw fell on no destination (the source was listed with the
    /// weights short of 100%: the rest is meant to be lost).
    Dropped,
}

/// An account's mappings, in the order they were added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mappings {
    list: Vec<Mapping>,
}

impl Mappings {
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Mapping> {
        self.list.iter()
    }

    /// Adds the mapping of `source` (replacing an earlier one of the same
    /// source), or gives nats-server's reason why it cannot be.
    pub fn add(&mut self, source: &str, destinations: &[MapDestination]) -> Result<(), String> {
        let mapping = Mapping::new(source, destinations)?;
        match self.list.iter_mut().find(|m| m.source == source) {
            Some(existing) => *existing = mapping,
            None => self.list.push(mapping),
        }
        Ok(())
    }

    /// The subject a client's message on `subject` is published on: the
    /// first mapping whose source matches picks a destination with
    /// `draw` (a uniform 0 to 99, asked for only when there is a choice);
    /// `cluster` is this server's cluster name.
    pub fn select(
        &self,
        subject: &[u8],
        cluster: Option<&str>,
        draw: impl FnOnce() -> u8,
        out: &mut Vec<u8>,
    ) -> Mapped {
        let Some(mapping) = self.list.iter().find(|m| {
            if m.wildcard {
                pattern_matches(m.source.as_bytes(), subject)
            } else {
                m.source.as_bytes() == subject
            }
        }) else {
            return Mapped::Unchanged;
        };
        let destinations = cluster
            .and_then(|name| {
                mapping
                    .by_cluster
                    .iter()
                    .find(|(c, _)| c == name)
                    .map(|(_, d)| d)
            })
            .unwrap_or(&mapping.destinations);
        let chosen = match destinations.as_slice() {
            [only] if only.weight == 100 => Some(only),
            _ => {
                let w = draw();
                destinations.iter().find(|d| w < d.weight)
            }
        };
        match chosen {
            Some(d) => {
                d.transform.apply(subject, out);
                Mapped::Renamed
            }
            None => Mapped::Dropped,
        }
    }
}

impl Mapping {
    fn new(source: &str, destinations: &[MapDestination]) -> Result<Mapping, String> {
        if !is_valid_subscribe_subject(source.as_bytes()) {
            return Err("invalid subject".to_string());
        }
        let wildcard = has_wildcard_token(source.as_bytes());
        let mut plain = Vec::new();
        let mut by_cluster: Vec<(String, Vec<Destination>)> = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        let mut total: u32 = 0;
        for d in destinations {
            if seen.contains(&d.subject.as_str()) {
                return Err(format!(
                    "duplicate entry for {}",
                    crate::go_quote::go_quote(&d.subject)
                ));
            }
            seen.push(&d.subject);
            if d.weight > 100 {
                return Err("individual weights need to be <= 100".to_string());
            }
            total += u32::from(d.weight);
            if total > 100 {
                return Err("total weight needs to be <= 100".to_string());
            }
            validate_destination(&d.subject)?;
            let destination = Destination {
                subject: d.subject.clone(),
                weight: d.weight,
                transform: SubjectTransform::new(source, &d.subject)?,
            };
            match &d.cluster {
                None => plain.push(destination),
                Some(name) => match by_cluster.iter_mut().find(|(c, _)| c == name) {
                    Some((_, list)) => list.push(destination),
                    None => by_cluster.push((name.clone(), vec![destination])),
                },
            }
        }
        let source_listed = seen.contains(&source);
        let complete = |list| complete(source, wildcard, source_listed, list);
        let destinations = complete(plain)?;
        let by_cluster = by_cluster
            .into_iter()
            .map(|(name, list)| Ok((name, complete(list)?)))
            .collect::<Result<_, String>>()?;
        Ok(Mapping {
            source: source.to_string(),
            wildcard,
            destinations,
            by_cluster,
        })
    }
}

/// nats-server's `processDestinations`: what the weights leave of 100% goes
/// to the source subject itself (unless it was listed: then the rest is
/// dropped), the list is sorted by weight and the weights made running
/// totals.
fn complete(
    source: &str,
    wildcard: bool,
    source_listed: bool,
    mut list: Vec<Destination>,
) -> Result<Vec<Destination>, String> {
    let listed: u32 = list.iter().map(|d| u32::from(d.weight)).sum();
    if listed != 100 && !source_listed {
        // The source's wildcards, numbered, as its own destination.
        let subject = if wildcard {
            number_wildcards(source)
        } else {
            source.to_string()
        };
        let weight = if list.is_empty() {
            100
        } else {
            (100 - listed) as u8
        };
        list.push(Destination {
            transform: SubjectTransform::new(source, &subject)?,
            subject,
            weight,
        });
    }
    list.sort_by_key(|d| d.weight);
    let mut running: u8 = 0;
    for d in &mut list {
        d.weight = d.weight.saturating_add(running);
        running = d.weight;
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weighted(subject: &str, weight: u8) -> MapDestination {
        MapDestination {
            subject: subject.to_string(),
            weight,
            cluster: None,
        }
    }

    fn select(m: &Mappings, subject: &str, cluster: Option<&str>, draw: u8) -> Option<String> {
        let mut out = Vec::new();
        match m.select(subject.as_bytes(), cluster, || draw, &mut out) {
            Mapped::Unchanged => Some(subject.to_string()),
            Mapped::Renamed => Some(String::from_utf8(out).unwrap()),
            Mapped::Dropped => None,
        }
    }

    #[test]
    fn plain_mapping_and_first_match_wins() {
        let mut m = Mappings::default();
        m.add("foo", &[MapDestination::all("bar")]).unwrap();
        m.add("a.*.*", &[MapDestination::all("b.$2.$1")]).unwrap();
        m.add("a.>", &[MapDestination::all("c.>")]).unwrap();
        assert_eq!(select(&m, "foo", None, 0).unwrap(), "bar");
        assert_eq!(select(&m, "a.x.y", None, 0).unwrap(), "b.y.x");
        assert_eq!(select(&m, "a.x.y.z", None, 0).unwrap(), "c.x.y.z");
        assert_eq!(select(&m, "other", None, 0).unwrap(), "other");
        // The same source again replaces the earlier mapping.
        m.add("foo", &[MapDestination::all("baz")]).unwrap();
        assert_eq!(select(&m, "foo", None, 0).unwrap(), "baz");
        assert_eq!(m.iter().count(), 3);
    }

    #[test]
    fn weights_are_running_totals_with_the_rest_on_the_source() {
        let mut m = Mappings::default();
        m.add("w.*", &[weighted("w1.$1", 20), weighted("w2.$1", 50)])
            .unwrap();
        let mapping = m.iter().next().unwrap();
        let shown: Vec<(&str, u8)> = mapping
            .destinations
            .iter()
            .map(|d| (d.subject.as_str(), d.weight))
            .collect();
        assert_eq!(shown, [("w1.$1", 20), ("w.$1", 50), ("w2.$1", 100)]);
        assert_eq!(select(&m, "w.k", None, 0).unwrap(), "w1.k");
        assert_eq!(select(&m, "w.k", None, 19).unwrap(), "w1.k");
        assert_eq!(select(&m, "w.k", None, 20).unwrap(), "w.k");
        assert_eq!(select(&m, "w.k", None, 50).unwrap(), "w2.k");
        assert_eq!(select(&m, "w.k", None, 99).unwrap(), "w2.k");
    }

    #[test]
    fn listing_the_source_means_the_rest_is_lost() {
        let mut m = Mappings::default();
        m.add("s", &[weighted("s", 10), weighted("t", 10)]).unwrap();
        assert_eq!(select(&m, "s", None, 5).unwrap(), "s");
        assert_eq!(select(&m, "s", None, 15).unwrap(), "t");
        assert_eq!(select(&m, "s", None, 50), None);
    }

    #[test]
    fn cluster_destinations_apply_in_their_cluster_only() {
        let mut m = Mappings::default();
        let east = MapDestination {
            subject: "east".to_string(),
            weight: 100,
            cluster: Some("E".to_string()),
        };
        // The weights count across clusters too (nats-server's total), so
        // a cluster's 100% leaves the others on the source subject.
        m.add("q", &[east]).unwrap();
        assert_eq!(select(&m, "q", Some("E"), 0).unwrap(), "east");
        assert_eq!(select(&m, "q", Some("W"), 0).unwrap(), "q");
        assert_eq!(select(&m, "q", None, 0).unwrap(), "q");
    }

    #[test]
    fn bad_weights_and_duplicates_are_refused() {
        let mut m = Mappings::default();
        assert_eq!(
            m.add("x", &[weighted("a", 60), weighted("b", 50)]),
            Err("total weight needs to be <= 100".to_string())
        );
        assert_eq!(
            m.add("x", &[weighted("a", 10), weighted("a", 10)]),
            Err("duplicate entry for \"a\"".to_string())
        );
        assert_eq!(
            m.add("x", &[weighted("a", 101)]),
            Err("individual weights need to be <= 100".to_string())
        );
        assert_eq!(
            m.add("x.*", &[MapDestination::all("y.*")]),
            Err("invalid subject".to_string())
        );
        assert!(m.is_empty());
    }
}
