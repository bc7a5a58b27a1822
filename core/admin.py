"""Admin building blocks the apps share."""

from django.contrib import admin
from django.contrib.admin.views.main import ORDER_VAR, ChangeList
from django.core.paginator import Paginator
from django.db.models import Q
from django.utils.functional import cached_property

from core.uuid_prefix import uuid_prefix_range

# The most rows a changelist counts: its page links need a count, and COUNT(*) over a table of millions reads it all.
COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    """Counts at most COUNT_CAP rows (a COUNT over a LIMIT), so a changelist's cost follows its pages, not the
    table; the pages past the cap are reached by searching or filtering."""

    @cached_property
    def count(self) -> int:
        return self.object_list[:COUNT_CAP].count()


class IndexedOrderChangeList(ChangeList):
    """A changelist in its admin's `ordering` only: with `sortable_by = ()` no header links to another order, and a
    hand-made `?o=` is ignored too."""

    def get_ordering(self, request, queryset):
        self.params.pop(ORDER_VAR, None)
        return super().get_ordering(request, queryset)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows whose state the service owns (the webhook, the reply engine, the sweep, delivery): shown, never added,
    changed or deleted by hand, where a change would go around the rules that wrote them. Actions that call the
    services are the way to act on them.

    Built for tables of millions of rows: the count is capped, the list sorts only by its `ordering` (which an
    index must serve), and `search_fields` name UUID fields, searched by the start of the id through their index."""

    paginator = CappedCountPaginator
    show_full_result_count = False
    sortable_by = ()

    def get_changelist(self, request, **kwargs):
        return IndexedOrderChangeList

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        try:
            first, last = uuid_prefix_range(search_term)
        except ValueError:
            return queryset.none(), False
        matches = Q()
        for field in self.search_fields:
            matches |= Q(**{f"{field}__range": (first, last)})
        return queryset.filter(matches), False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
