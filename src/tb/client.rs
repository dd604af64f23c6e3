//! The one wrapper around the TigerBeetle client: connect, a timeout on every request (the
//! client retries forever, and a cluster with another id never answers), timestamp paging of
//! the query operations, and typed errors that keep the client's error as their `source()`.

use std::future::Future;
use std::time::Duration;

use tbc::account::{Filter, FilterFlags};
use tbc::core::query_filter::Flags as QueryFlags;
use tbc::error::{
    CreateAccountsError, CreateTransfersError, NewClientError, SendError, SendErrorKind,
};
use tigerbeetle_unofficial as tbc;

use super::limits::{BATCH_EVENTS_MAX, QUERY_LIMIT_MAX};
use super::{Account, Balances, Transfer};

/// Stops paging a cluster with more accounts than this (memory bound: ~200 bytes each).
pub const CLUSTER_ACCOUNTS_MAX: usize = 50_000_000;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot create a client for cluster {cluster_id} at {addresses}")]
    Connect {
        cluster_id: u128,
        addresses: String,
        #[source]
        source: NewClientError,
    },
    #[error("{what} failed")]
    Request {
        what: String,
        #[source]
        source: SendError,
    },
    #[error(
        "{what} got no reply within {timeout_s} s: is the cluster reachable at {addresses}, and \
         is --cluster-id {cluster_id} right? (a cluster with another id never answers)"
    )]
    Unanswered {
        what: String,
        timeout_s: u64,
        cluster_id: u128,
        addresses: String,
    },
    #[error("{what} failed")]
    Create {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the cluster has more than {max} {what}, the most ledgerlake reads in one pass")]
    TooMany { what: &'static str, max: usize },
    /// The client refused the request before sending it: it carries more than the cluster's
    /// request limit (`--limit-request`, 32 KiB under `--development`). Nothing was applied.
    #[error("{what} is larger than the cluster accepts in one request (nothing was applied)")]
    TooMuchData { what: String },
}

/// A send error, with the client's refusal of an oversized request told apart.
fn send_error(what: String, source: SendError) -> ClusterError {
    if matches!(source.kind(), SendErrorKind::TooMuchData) {
        ClusterError::TooMuchData { what }
    } else {
        ClusterError::Request { what, source }
    }
}

/// An account as the cluster has it now: its fields and its current balances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterAccount {
    pub account: Account,
    pub balances: Balances,
}

impl From<&tbc::Account> for ClusterAccount {
    fn from(a: &tbc::Account) -> Self {
        ClusterAccount {
            account: Account::from(a),
            balances: Balances::from(a),
        }
    }
}

/// An event of a `create_*` request that the cluster refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Its index in the request.
    pub index: usize,
    /// The result's name as TigerBeetle's documentation spells it (`exceeds_credits`).
    pub result: String,
    /// The result code.
    pub code: u32,
}

impl Rejected {
    /// Every other event of a linked chain fails with this result when one of them fails.
    pub const LINKED_EVENT_FAILED: &'static str = "linked_event_failed";

    fn new(index: u32, kind: impl std::fmt::Debug, code: u32) -> Rejected {
        Rejected {
            index: index as usize,
            result: snake_case(&format!("{kind:?}")),
            code,
        }
    }
}

/// The result that explains a refused request: the first one that is not merely the failure of
/// a linked chain that another event broke. `None` for no rejection.
pub fn root_cause(rejected: &[Rejected]) -> Option<&Rejected> {
    rejected
        .iter()
        .find(|r| r.result != Rejected::LINKED_EVENT_FAILED)
        .or(rejected.first())
}

/// `ExceedsCredits` → `exceeds_credits`, the name TigerBeetle's documentation uses.
fn snake_case(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Which way a timestamp-ordered query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Oldest,
    Newest,
}

fn query_filter(timestamp_min: u64, limit: u32, order: Order) -> Box<tbc::QueryFilter> {
    let mut f = tbc::QueryFilter::new(limit);
    f.as_raw_mut().timestamp_min = timestamp_min;
    if order == Order::Newest {
        f.set_flags(QueryFlags::REVERSED);
    }
    Box::new(f)
}

/// Reads every object of a timestamp-ordered query, one full page at a time:
/// `fetch(timestamp_min)` returns up to [`BATCH_EVENTS_MAX`] objects from `timestamp_min` on, in
/// timestamp order, and `visit` sees each page. Stops after a page that is not full, or with
/// [`ClusterError::TooMany`] past `objects_max`.
pub async fn for_each_page<T, E, F, Fut, V>(
    what: &'static str,
    objects_max: usize,
    timestamp_of: fn(&T) -> u64,
    mut fetch: F,
    mut visit: V,
) -> Result<(), E>
where
    E: From<ClusterError>,
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<Vec<T>, ClusterError>>,
    V: FnMut(Vec<T>) -> Result<(), E>,
{
    let mut timestamp_min = 0;
    let mut seen = 0usize;
    loop {
        let page = fetch(timestamp_min).await?;
        let full = page.len() >= BATCH_EVENTS_MAX;
        let Some(last) = page.last() else {
            return Ok(());
        };
        timestamp_min = timestamp_of(last) + 1;
        seen += page.len();
        if seen > objects_max {
            return Err(ClusterError::TooMany {
                what,
                max: objects_max,
            }
            .into());
        }
        visit(page)?;
        if !full {
            return Ok(());
        }
    }
}

/// A client of one cluster, with the reply timeout of every request.
pub struct Cluster {
    client: tbc::Client,
    cluster_id: u128,
    addresses: String,
    timeout: Duration,
}

impl Cluster {
    /// Creates the client (it connects lazily: the first reply proves the address and the id).
    pub fn connect(
        cluster_id: u128,
        addresses: &str,
        timeout: Duration,
    ) -> Result<Cluster, ClusterError> {
        let client =
            tbc::Client::new(cluster_id, addresses).map_err(|source| ClusterError::Connect {
                cluster_id,
                addresses: addresses.to_string(),
                source,
            })?;
        Ok(Cluster {
            client,
            cluster_id,
            addresses: addresses.to_string(),
            timeout,
        })
    }

    /// The error of a request that got no reply within the timeout.
    fn unanswered(&self, what: String) -> ClusterError {
        ClusterError::Unanswered {
            what,
            timeout_s: self.timeout.as_secs(),
            cluster_id: self.cluster_id,
            addresses: self.addresses.clone(),
        }
    }

    /// `request`, or an error if it fails or gets no reply within the timeout.
    async fn bounded<T, E>(
        &self,
        what: impl Fn() -> String,
        request: impl Future<Output = Result<T, E>>,
    ) -> Result<Result<T, E>, ClusterError> {
        tokio::time::timeout(self.timeout, request)
            .await
            .map_err(|_| self.unanswered(what()))
    }

    async fn send<T>(
        &self,
        what: impl Fn() -> String,
        request: impl Future<Output = Result<T, SendError>>,
    ) -> Result<T, ClusterError> {
        self.bounded(&what, request)
            .await?
            .map_err(|source| ClusterError::Request {
                what: what(),
                source,
            })
    }

    /// Every account of the cluster, in creation order (at most [`CLUSTER_ACCOUNTS_MAX`]).
    pub async fn all_accounts(&self) -> Result<Vec<ClusterAccount>, ClusterError> {
        let mut out = Vec::new();
        self.for_each_accounts_page(CLUSTER_ACCOUNTS_MAX, |page| {
            out.extend(page);
            Ok::<_, ClusterError>(())
        })
        .await?;
        Ok(out)
    }

    /// Every account, one page (up to [`BATCH_EVENTS_MAX`]) at a time, in creation order.
    pub async fn for_each_accounts_page<E: From<ClusterError>>(
        &self,
        accounts_max: usize,
        visit: impl FnMut(Vec<ClusterAccount>) -> Result<(), E>,
    ) -> Result<(), E> {
        let fetch = |timestamp_min: u64| self.accounts_after(timestamp_min.saturating_sub(1));
        for_each_page(
            "accounts",
            accounts_max,
            |a| a.account.timestamp,
            fetch,
            visit,
        )
        .await
    }

    /// Every transfer, one page (up to [`BATCH_EVENTS_MAX`]) at a time, in timestamp order.
    pub async fn for_each_transfers_page<E: From<ClusterError>>(
        &self,
        transfers_max: usize,
        visit: impl FnMut(Vec<Transfer>) -> Result<(), E>,
    ) -> Result<(), E> {
        let fetch = |timestamp_min: u64| {
            self.query_transfers(query_filter(timestamp_min, QUERY_LIMIT_MAX, Order::Oldest))
        };
        for_each_page("transfers", transfers_max, |t| t.timestamp, fetch, visit).await
    }

    /// One page: up to [`BATCH_EVENTS_MAX`] accounts created after timestamp `after`, in
    /// creation order (the filter's other fields are zero, which matches every account).
    pub async fn accounts_after(&self, after: u64) -> Result<Vec<ClusterAccount>, ClusterError> {
        let filter = query_filter(after + 1, QUERY_LIMIT_MAX, Order::Oldest);
        let page = self
            .send(
                || format!("query_accounts after timestamp {after}"),
                self.client.query_accounts(filter),
            )
            .await?;
        Ok(page.iter().map(ClusterAccount::from).collect())
    }

    /// The account created last, if any.
    pub async fn last_account(&self) -> Result<Option<ClusterAccount>, ClusterError> {
        let page = self
            .send(
                || "query_accounts for the newest account".to_string(),
                self.client
                    .query_accounts(query_filter(0, 1, Order::Newest)),
            )
            .await?;
        Ok(page.first().map(ClusterAccount::from))
    }

    /// The transfer created last, if any.
    pub async fn last_transfer(&self) -> Result<Option<Transfer>, ClusterError> {
        Ok(self
            .query_transfers(query_filter(0, 1, Order::Newest))
            .await?
            .pop())
    }

    async fn query_transfers(
        &self,
        filter: Box<tbc::QueryFilter>,
    ) -> Result<Vec<Transfer>, ClusterError> {
        let timestamp_min = filter.as_raw().timestamp_min;
        let page = self
            .send(
                || format!("query_transfers from timestamp {timestamp_min}"),
                self.client.query_transfers(filter),
            )
            .await?;
        Ok(page.iter().map(Transfer::from).collect())
    }

    /// The accounts among `ids` that exist, in the order of `ids`.
    pub async fn lookup(&self, ids: &[u128]) -> Result<Vec<ClusterAccount>, ClusterError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(BATCH_EVENTS_MAX) {
            let found = self
                .send(
                    || format!("lookup_accounts of {} ids", chunk.len()),
                    self.client.lookup_accounts(chunk.to_vec()),
                )
                .await?;
            out.extend(found.iter().map(ClusterAccount::from));
        }
        Ok(out)
    }

    /// A `history` account's balances after its last transfer at or before `at`, with that
    /// transfer's timestamp (`None`: no transfer by then). Expiries are not listed by
    /// TigerBeetle's `get_account_balances`: the balances are those of the last transfer.
    pub async fn balances_at(
        &self,
        id: u128,
        at: u64,
    ) -> Result<Option<(u64, Balances)>, ClusterError> {
        let mut filter = Filter::new(id, 1)
            .with_flags(FilterFlags::DEBITS | FilterFlags::CREDITS | FilterFlags::REVERSED);
        filter.as_raw_mut().timestamp_max = at;
        let found = self
            .send(
                || format!("get_account_balances of account {id} up to {at}"),
                self.client.get_account_balances(Box::new(filter)),
            )
            .await?;
        Ok(found
            .first()
            .map(|b| (b.as_raw().timestamp, Balances::from(b))))
    }

    /// A `history` account's balances after each of its transfers: (timestamp, balances), in
    /// timestamp order.
    pub async fn balance_history(
        &self,
        id: u128,
        entries_max: usize,
    ) -> Result<Vec<(u64, Balances)>, ClusterError> {
        let fetch = |timestamp_min: u64| async move {
            let mut filter = Filter::new(id, QUERY_LIMIT_MAX)
                .with_flags(FilterFlags::DEBITS | FilterFlags::CREDITS);
            filter.as_raw_mut().timestamp_min = timestamp_min;
            let found = self
                .send(
                    || format!("get_account_balances of account {id} from {timestamp_min}"),
                    self.client.get_account_balances(Box::new(filter)),
                )
                .await?;
            Ok(found
                .iter()
                .map(|b| (b.as_raw().timestamp, Balances::from(b)))
                .collect())
        };
        let mut out = Vec::new();
        let visit = |page: Vec<(u64, Balances)>| {
            out.extend(page);
            Ok(())
        };
        for_each_page::<_, ClusterError, _, _, _>("balances", entries_max, |e| e.0, fetch, visit)
            .await?;
        Ok(out)
    }

    /// Whether `id` is the debit or credit account of a transfer in `min..=max`.
    pub async fn has_transfer_in(
        &self,
        id: u128,
        min: u64,
        max: u64,
    ) -> Result<bool, ClusterError> {
        let mut filter = Filter::new(id, 1).with_flags(FilterFlags::DEBITS | FilterFlags::CREDITS);
        filter.as_raw_mut().timestamp_min = min;
        filter.as_raw_mut().timestamp_max = max;
        let found = self
            .send(
                || format!("get_account_transfers of account {id} in {min}..={max}"),
                self.client.get_account_transfers(Box::new(filter)),
            )
            .await?;
        Ok(!found.is_empty())
    }

    /// Creates `accounts` (at most [`BATCH_EVENTS_MAX`]) in one request: the events the
    /// cluster refused, in request order (none: all created).
    pub async fn create_accounts(
        &self,
        accounts: Vec<tbc::Account>,
    ) -> Result<Vec<Rejected>, ClusterError> {
        assert!(accounts.len() <= BATCH_EVENTS_MAX);
        let len = accounts.len();
        let what = || format!("create_accounts of {len} accounts");
        match self
            .bounded(what, self.client.create_accounts(accounts))
            .await?
        {
            Ok(()) => Ok(Vec::new()),
            Err(CreateAccountsError::Api(e)) => Ok(e
                .as_slice()
                .iter()
                .map(|r| Rejected::new(r.index(), r.kind(), r.inner().code().get()))
                .collect()),
            Err(CreateAccountsError::Send(source)) => Err(send_error(what(), source)),
            Err(e) => Err(ClusterError::Create {
                what: what(),
                source: Box::new(e),
            }),
        }
    }

    /// Creates `transfers` (at most [`BATCH_EVENTS_MAX`]) in one request: the events the
    /// cluster refused, in request order (none: all created).
    pub async fn create_transfers(
        &self,
        transfers: Vec<tbc::Transfer>,
    ) -> Result<Vec<Rejected>, ClusterError> {
        assert!(transfers.len() <= BATCH_EVENTS_MAX);
        let len = transfers.len();
        let what = || format!("create_transfers of {len} transfers");
        match self
            .bounded(what, self.client.create_transfers(transfers))
            .await?
        {
            Ok(()) => Ok(Vec::new()),
            Err(CreateTransfersError::Api(e)) => Ok(e
                .as_slice()
                .iter()
                .map(|r| Rejected::new(r.index(), r.kind(), r.inner().code().get()))
                .collect()),
            Err(CreateTransfersError::Send(source)) => Err(send_error(what(), source)),
            Err(e) => Err(ClusterError::Create {
                what: what(),
                source: Box::new(e),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn result_names_follow_tigerbeetle_docs() {
        assert_eq!(snake_case("ExceedsCredits"), "exceeds_credits");
        assert_eq!(
            snake_case("ImportedEventTimestampMustNotRegress"),
            "imported_event_timestamp_must_not_regress"
        );
    }

    #[test]
    fn a_broken_chain_is_explained_by_the_event_that_broke_it() {
        let r = |index, result: &str| Rejected {
            index,
            result: result.to_string(),
            code: 0,
        };
        let results = vec![
            r(0, Rejected::LINKED_EVENT_FAILED),
            r(1, "exceeds_credits"),
            r(2, Rejected::LINKED_EVENT_FAILED),
        ];
        assert_eq!(root_cause(&results).map(|r| r.index), Some(1));
        let only_linked = vec![r(3, Rejected::LINKED_EVENT_FAILED)];
        assert_eq!(root_cause(&only_linked).map(|r| r.index), Some(3));
        assert_eq!(root_cause(&[]), None);
    }

    #[test]
    fn an_unanswered_request_says_what_to_check() {
        let e = ClusterError::Unanswered {
            what: "query_accounts".into(),
            timeout_s: 5,
            cluster_id: 7,
            addresses: "3000".into(),
        };
        let text = e.to_string();
        assert!(text.contains("is the cluster reachable at 3000"), "{text}");
        assert!(text.contains("is --cluster-id 7 right?"), "{text}");
    }

    #[tokio::test]
    async fn a_bad_address_keeps_the_client_error_as_its_source() {
        let Err(e) = Cluster::connect(0, "not an address", Duration::from_secs(1)) else {
            panic!("a malformed address is refused");
        };
        assert!(matches!(e, ClusterError::Connect { .. }), "{e:?}");
        assert!(e.source().is_some());
        assert!(!e.to_string().contains(&e.source().unwrap().to_string()));
    }

    #[tokio::test]
    async fn pages_follow_the_timestamp_cursor_and_stop_at_a_short_page() {
        // Objects are their own timestamps: 1..=n.
        let n = 2 * BATCH_EVENTS_MAX + 5;
        let mut asked = Vec::new();
        let mut seen = Vec::new();
        let asked_ref = &mut asked;
        let fetch = |from: u64| {
            asked_ref.push(from);
            let page: Vec<u64> = (from.max(1)..=n as u64).take(BATCH_EVENTS_MAX).collect();
            async move { Ok(page) }
        };
        for_each_page::<_, ClusterError, _, _, _>(
            "objects",
            n,
            |t| *t,
            fetch,
            |page| {
                seen.extend(page);
                Ok(())
            },
        )
        .await
        .unwrap();
        assert_eq!(seen, (1..=n as u64).collect::<Vec<_>>());
        let b = BATCH_EVENTS_MAX as u64;
        assert_eq!(asked, vec![0, b + 1, 2 * b + 1]);
        let too_many = for_each_page::<_, ClusterError, _, _, _>(
            "objects",
            n - 1,
            |t| *t,
            |from: u64| async move { Ok((from.max(1)..=n as u64).take(BATCH_EVENTS_MAX).collect()) },
            |_| Ok(()),
        )
        .await;
        assert!(matches!(too_many, Err(ClusterError::TooMany { .. })));
    }
}
