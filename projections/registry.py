"""Every projection the platform runs, in one list (the runner feeds each in turn).

Order matters where one view reads another's tables while it applies events:
customers (balances, addresses) comes before households.
"""

from __future__ import annotations

from projections.accounts import AccountsProjection
from projections.base import Projection
from projections.complaints import ComplaintsProjection
from projections.contact_history import ContactHistoryProjection
from projections.customers import CustomersProjection
from projections.households import HouseholdsProjection
from projections.mailing_decisions import MailingDecisionsProjection
from projections.orders import OrdersProjection


def all_projections() -> list[Projection]:
    return [
        CustomersProjection(),
        HouseholdsProjection(),
        MailingDecisionsProjection(),
        ContactHistoryProjection(),
        OrdersProjection(),
        ComplaintsProjection(),
        AccountsProjection(),
    ]
