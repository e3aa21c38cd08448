//! Who may do what: roles, the permissions each holds, and shop scopes.

use orderhub_domain::lifecycle::CommandKind;
use orderhub_domain::{ShopId, TenantId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Ops,
    Finance,
    Warehouse,
    Viewer,
    /// Aggregated, de-identified figures only (the golden metrics): no order, buyer or event.
    Analyst,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Admin,
        Role::Ops,
        Role::Finance,
        Role::Warehouse,
        Role::Viewer,
        Role::Analyst,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Ops => "ops",
            Role::Finance => "finance",
            Role::Warehouse => "warehouse",
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The whole permission table, one match. Every route declares the permission it needs
    /// (`orderhub-http`'s `policy`), the use cases check the same one, and README's role table is
    /// this match written out.
    pub fn allows(self, p: Permission) -> bool {
        use CommandKind as C;
        use Permission as P;
        match (self, p) {
            (Role::Admin, _) => true,
            // Issue 23: a role that sees aggregated figures and nothing per order.
            (Role::Analyst, P::MetricsRead) => true,
            (Role::Analyst, _) => false,
            (_, P::MetricsRead) => true,
            (_, P::OrdersRead | P::EventsRead | P::InventoryRead | P::StatsRead) => true,
            (_, P::WavesRead) => true,
            (_, P::AfterSalesRead) => true,
            (Role::Ops, P::AfterSalesWrite | P::AfterSalesReceive | P::AfterSalesRefund) => true,
            (Role::Warehouse, P::AfterSalesReceive) => true,
            (Role::Finance, P::AfterSalesRefund) => true,
            (Role::Ops, P::OrdersCreate | P::Transition(_) | P::Reserve | P::MasterData) => true,
            (Role::Ops, P::DeliveriesOperate | P::ChannelsRead | P::ExceptionsResolve) => true,
            (
                Role::Ops,
                P::CarriersRead | P::OrdersEdit | P::InterventionsRead | P::OrdersCombine,
            ) => true,
            (Role::Ops | Role::Warehouse, P::ExceptionsWork | P::ParcelsShip) => true,
            (Role::Ops, P::RulesRead | P::RulesWrite) => true,
            (Role::Ops | Role::Finance, P::CustomersRead | P::CustomersWrite) => true,
            (Role::Ops | Role::Warehouse, P::StockMove | P::FulfillmentSteer) => true,
            (Role::Ops | Role::Warehouse, P::WavesWrite) => true,
            (Role::Finance, P::Transition(C::Pay | C::Complete | C::Cancel)) => true,
            (
                Role::Warehouse,
                P::Transition(C::Allocate | C::Release | C::Ship | C::Pickup | C::Deliver),
            ) => true,
            (Role::Ops | Role::Finance | Role::Warehouse | Role::Viewer, _) => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    OrdersRead,
    OrdersCreate,
    Transition(CommandKind),
    /// Retry an order's stuck fulfillment step, switch its carrier.
    FulfillmentSteer,
    /// Resolve an order's open exception by hand, with a reason (lifts a stop).
    ExceptionsResolve,
    /// Take an open exception (assign it to a key, or unassign it) and write notes on it.
    ExceptionsWork,
    /// The tenant's SLA per exception kind (when an exception is due, then escalated).
    ExceptionSlaManage,
    /// The dashboard of manual interventions: what people did, by kind, actor and day.
    InterventionsRead,
    /// Edit an order before release (address, memo, ship-by, invoice, lines), or ask for an edit
    /// the tenant's rules send for approval.
    OrdersEdit,
    /// Approve or reject another key's pending order edit.
    OrdersEditApprove,
    /// Which order edits need approval, and by how many people.
    EditRulesManage,
    EventsRead,
    /// The console's live figures (`/v1/stats`).
    StatsRead,
    /// The golden metrics and the data-quality alerts: aggregates only, nothing per order.
    MetricsRead,
    /// Run the data-quality check on demand.
    QualityRun,
    /// Compute the order health scores and set their weights, thresholds and alert rule.
    HealthManage,
    KeysManage,
    InventoryRead,
    /// Receipts, adjustments, returns after QC, WMS/ERP snapshots.
    StockMove,
    /// SKUs, warehouses, channel inventory policies.
    MasterData,
    /// Reservations for checkouts and orders.
    Reserve,
    /// Webhook subscriptions: where events leave the hub, with their signing secrets.
    SubscriptionsManage,
    /// Dead letters: list, inspect (the event as sent), replay.
    DeliveriesOperate,
    /// Channel shops' configuration (never its secrets) and the messages channels sent.
    ChannelsRead,
    /// A channel shop's configuration: app credentials, tokens, API base URL.
    ChannelsManage,
    /// The tenant's carrier accounts as configured (never their secrets).
    CarriersRead,
    /// A carrier account: endpoint, credentials, tracking quota. Admin only: it holds secrets.
    CarriersManage,
    /// After-sales cases: list and read.
    AfterSalesRead,
    /// After-sales cases: open, approve, refuse, close.
    AfterSalesWrite,
    /// After-sales cases: receive the returned goods with their quality control.
    AfterSalesReceive,
    /// After-sales cases: record the refund (the money went back).
    AfterSalesRefund,
    /// Merge orders into one parcel (and undo it), split an order into parcels.
    OrdersCombine,
    /// Ship one parcel of a split or merged order with its waybill.
    ParcelsShip,
    /// The tenant's merge settings (automatic merge, window, across shops).
    MergeRulesManage,
    /// Rule sets: list, read, test one order, run the sandbox.
    RulesRead,
    /// Rule sets: write a draft, submit it for approval.
    RulesWrite,
    /// Rule sets: approve another key's submitted set, publish an approved one.
    RulesApprove,
    /// Customers, their channel buyer links and invoice profiles (tax ids, bank accounts), and
    /// the invoice compliance scan.
    CustomersRead,
    /// Create customers, link channel buyer ids to them, version their invoice profiles.
    CustomersWrite,
    /// Waves: list and read, with their orders and pick lists.
    WavesRead,
    /// Waves: create them from a warehouse's released orders, start and close them.
    WavesWrite,
}

impl Permission {
    /// Every permission, for tables and tests.
    pub fn all() -> Vec<Permission> {
        let mut v = vec![
            Permission::OrdersRead,
            Permission::OrdersCreate,
            Permission::FulfillmentSteer,
            Permission::ExceptionsResolve,
            Permission::ExceptionsWork,
            Permission::ExceptionSlaManage,
            Permission::InterventionsRead,
            Permission::OrdersEdit,
            Permission::OrdersEditApprove,
            Permission::EditRulesManage,
            Permission::EventsRead,
            Permission::StatsRead,
            Permission::MetricsRead,
            Permission::QualityRun,
            Permission::HealthManage,
            Permission::KeysManage,
            Permission::InventoryRead,
            Permission::StockMove,
            Permission::MasterData,
            Permission::Reserve,
            Permission::SubscriptionsManage,
            Permission::DeliveriesOperate,
            Permission::ChannelsRead,
            Permission::ChannelsManage,
            Permission::CarriersRead,
            Permission::CarriersManage,
            Permission::AfterSalesRead,
            Permission::AfterSalesWrite,
            Permission::AfterSalesReceive,
            Permission::AfterSalesRefund,
            Permission::OrdersCombine,
            Permission::ParcelsShip,
            Permission::MergeRulesManage,
            Permission::RulesRead,
            Permission::RulesWrite,
            Permission::RulesApprove,
            Permission::CustomersRead,
            Permission::CustomersWrite,
            Permission::WavesRead,
            Permission::WavesWrite,
        ];
        v.extend(CommandKind::ALL.iter().map(|k| Permission::Transition(*k)));
        v
    }

    /// What the permission lets a key do, for error messages and README's table.
    pub fn describe(self) -> String {
        match self {
            Permission::OrdersRead => "read orders".into(),
            Permission::OrdersCreate => "create orders".into(),
            Permission::Transition(k) => format!("{} orders", k.as_str()),
            Permission::FulfillmentSteer => "retry or re-route fulfillment".into(),
            Permission::ExceptionsResolve => "resolve order exceptions (lift a stop)".into(),
            Permission::ExceptionsWork => "assign order exceptions and write notes on them".into(),
            Permission::ExceptionSlaManage => "set the SLA per exception kind".into(),
            Permission::InterventionsRead => {
                "read the dashboard of manual interventions (who did what)".into()
            }
            Permission::OrdersEdit => {
                "edit orders before release, or request an edit that needs approval".into()
            }
            Permission::OrdersEditApprove => "approve or reject other keys' order edits".into(),
            Permission::EditRulesManage => "configure which order edits need approval".into(),
            Permission::EventsRead => "read events".into(),
            Permission::StatsRead => "read the live figures".into(),
            Permission::MetricsRead => {
                "read the golden metrics, data-quality alerts and order health scores (aggregates \
                 only)"
                    .into()
            }
            Permission::QualityRun => "run the data-quality check".into(),
            Permission::HealthManage => {
                "compute the order health scores and set their configuration".into()
            }
            Permission::KeysManage => "manage API keys".into(),
            Permission::InventoryRead => "read stock".into(),
            Permission::StockMove => {
                "move stock (receipts, adjustments, returns, snapshots)".into()
            }
            Permission::MasterData => {
                "define SKUs, warehouses and channel inventory policies".into()
            }
            Permission::Reserve => "reserve stock".into(),
            Permission::SubscriptionsManage => "manage webhook subscriptions".into(),
            Permission::DeliveriesOperate => "list, inspect and replay dead letters".into(),
            Permission::ChannelsRead => "read channel shops and channel messages".into(),
            Permission::ChannelsManage => "configure channel shops".into(),
            Permission::CarriersRead => "read carrier accounts (never their secrets)".into(),
            Permission::CarriersManage => "configure carrier accounts".into(),
            Permission::AfterSalesRead => "read after-sales cases".into(),
            Permission::AfterSalesWrite => {
                "open, approve, refuse, exchange and close after-sales cases".into()
            }
            Permission::AfterSalesReceive => {
                "receive returned goods with their quality control".into()
            }
            Permission::AfterSalesRefund => "record after-sales refunds".into(),
            Permission::OrdersCombine => {
                "merge orders into one parcel, undo a merge, split an order into parcels".into()
            }
            Permission::ParcelsShip => "ship a parcel of a split or merged order".into(),
            Permission::MergeRulesManage => "configure order merging".into(),
            Permission::RulesRead => {
                "read rule sets, test them on an order, run the sandbox, list the blacklist".into()
            }
            Permission::RulesWrite => {
                "write rule set drafts and submit them, add to and remove from the blacklist".into()
            }
            Permission::RulesApprove => {
                "approve other keys' rule sets and publish approved ones".into()
            }
            Permission::CustomersRead => {
                "read customers, their invoice profiles and the invoice compliance scan".into()
            }
            Permission::CustomersWrite => {
                "create customers, link buyer ids, version invoice profiles".into()
            }
            Permission::WavesRead => "read waves and their pick lists".into(),
            Permission::WavesWrite => "create, start and close waves".into(),
        }
    }
}

/// The caller, as its API key says: tenant, role, shop scope and whether it may see personal data.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub tenant_id: TenantId,
    pub key_id: String,
    pub key_name: String,
    pub role: Role,
    /// `None`: every shop of the tenant. `Some(list)`: only these shops; others' orders do not exist.
    pub shops: Option<Vec<ShopId>>,
    /// The `pii:read` scope: receiver phone, name and address in clear.
    pub pii_read: bool,
}

impl Principal {
    pub fn can(&self, p: Permission) -> bool {
        self.role.allows(p)
    }
    pub fn sees_shop(&self, shop: &ShopId) -> bool {
        self.shops.as_ref().is_none_or(|s| s.contains(shop))
    }
    /// Whether an object limited to `shops` (`None`: every shop of the tenant) is within this
    /// key's scope: an unscoped key reaches everything, a scoped one only what is limited to a
    /// subset of its own shops.
    pub fn covers(&self, shops: Option<&[ShopId]>) -> bool {
        match (&self.shops, shops) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(mine), Some(theirs)) => theirs.iter().all(|s| mine.contains(s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewers_only_read_and_warehouses_only_move_goods() {
        assert!(Role::Viewer.allows(Permission::OrdersRead));
        assert!(!Role::Viewer.allows(Permission::OrdersCreate));
        assert!(
            CommandKind::ALL
                .iter()
                .all(|c| !Role::Viewer.allows(Permission::Transition(*c)))
        );
        assert!(Role::Warehouse.allows(Permission::Transition(CommandKind::Ship)));
        assert!(!Role::Warehouse.allows(Permission::Transition(CommandKind::Pay)));
        assert!(Role::Finance.allows(Permission::Transition(CommandKind::Pay)));
        assert!(!Role::Ops.allows(Permission::KeysManage));
        assert!(Role::Admin.allows(Permission::KeysManage));
        assert!(Role::Analyst.allows(Permission::MetricsRead));
        assert!(
            Permission::all()
                .into_iter()
                .filter(|p| *p != Permission::MetricsRead)
                .all(|p| !Role::Analyst.allows(p)),
            "an analyst reads the metrics and nothing else"
        );
        assert!(!Role::Ops.allows(Permission::SubscriptionsManage));
        assert!(!Role::Ops.allows(Permission::ChannelsManage));
        assert!(!Role::Ops.allows(Permission::CarriersManage));
        assert!(Role::Ops.allows(Permission::CarriersRead));
        assert!(!Role::Warehouse.allows(Permission::CarriersRead));
        assert!(Role::Ops.allows(Permission::DeliveriesOperate));
        assert!(Role::Warehouse.allows(Permission::StockMove));
        assert!(Role::Ops.allows(Permission::ExceptionsResolve));
        for r in [Role::Finance, Role::Warehouse, Role::Viewer] {
            assert!(!r.allows(Permission::ExceptionsResolve), "{}", r.as_str());
        }
        assert!(!Role::Warehouse.allows(Permission::MasterData));
        // Operators edit and ask; only an admin approves or sets the rules.
        assert!(Role::Ops.allows(Permission::OrdersEdit));
        for r in [Role::Ops, Role::Finance, Role::Warehouse, Role::Viewer] {
            assert!(!r.allows(Permission::OrdersEditApprove), "{}", r.as_str());
            assert!(!r.allows(Permission::EditRulesManage), "{}", r.as_str());
        }
        for r in [Role::Finance, Role::Warehouse, Role::Viewer] {
            assert!(!r.allows(Permission::OrdersEdit), "{}", r.as_str());
            assert!(!r.allows(Permission::RulesWrite), "{}", r.as_str());
        }
        // Operators write rule sets; only an admin approves and publishes them.
        assert!(Role::Ops.allows(Permission::RulesWrite));
        for r in [Role::Ops, Role::Finance, Role::Warehouse, Role::Viewer] {
            assert!(!r.allows(Permission::RulesApprove), "{}", r.as_str());
        }
        // Invoice profiles hold tax ids and bank accounts: operators and finance only.
        for r in [Role::Ops, Role::Finance] {
            assert!(r.allows(Permission::CustomersWrite), "{}", r.as_str());
        }
        for r in [Role::Warehouse, Role::Viewer] {
            assert!(!r.allows(Permission::CustomersRead), "{}", r.as_str());
        }
    }

    #[test]
    fn a_scoped_key_covers_only_subsets_of_its_shops() {
        let s = |x: &str| ShopId::parse(x).unwrap();
        let p = Principal {
            tenant_id: TenantId::parse("t").unwrap(),
            key_id: "k".into(),
            key_name: "k".into(),
            role: Role::Admin,
            shops: Some(vec![s("a"), s("b")]),
            pii_read: false,
        };
        assert!(p.covers(Some(&[s("a")])));
        assert!(p.covers(Some(&[s("a"), s("b")])));
        assert!(!p.covers(Some(&[s("a"), s("c")])));
        assert!(!p.covers(None));
        let all = Principal { shops: None, ..p };
        assert!(all.covers(None) && all.covers(Some(&[s("c")])));
    }
}
