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
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Ops,
        Role::Finance,
        Role::Warehouse,
        Role::Viewer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Ops => "ops",
            Role::Finance => "finance",
            Role::Warehouse => "warehouse",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The whole permission table, one match.
    pub fn allows(self, p: Permission) -> bool {
        use CommandKind as C;
        use Permission as P;
        match (self, p) {
            (Role::Admin, _) => true,
            (_, P::OrdersRead | P::EventsRead | P::InventoryRead) => true,
            (Role::Ops | Role::Warehouse, P::InventoryWrite) => true,
            (Role::Ops, P::Reserve) => true,
            (Role::Ops, P::SubscriptionsManage) => true,
            (Role::Ops, P::OrdersCreate | P::Transition(_)) => true,
            (Role::Finance, P::Transition(C::Pay | C::Complete | C::Cancel)) => true,
            (
                Role::Warehouse,
                P::Transition(C::Allocate | C::Release | C::Ship | C::Pickup | C::Deliver),
            ) => true,
            (Role::Ops | Role::Finance | Role::Warehouse | Role::Viewer, _) => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    OrdersRead,
    OrdersCreate,
    Transition(CommandKind),
    EventsRead,
    KeysManage,
    InventoryRead,
    /// SKUs, warehouses, receipts, adjustments.
    InventoryWrite,
    /// Reservations for checkouts and orders.
    Reserve,
    /// Webhook subscriptions and their dead letters (list, inspect, replay).
    SubscriptionsManage,
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
    }
}
