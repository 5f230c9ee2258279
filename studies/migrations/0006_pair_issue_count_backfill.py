"""Count the comparison trials issued before PairIssueCount existed."""

from django.db import migrations
from django.db.models import Count


def count_issued_pairs(apps, schema_editor):
    Trial = apps.get_model("studies", "Trial")
    PairIssueCount = apps.get_model("studies", "PairIssueCount")
    counts = {}
    issued = (
        Trial.objects.filter(is_golden=False, is_practice=False)
        .order_by()
        .values_list(
            "session__study_id", "source_image_id", "left__condition_id", "right__condition_id"
        )
        .annotate(n=Count("pk"))
    )
    for study_id, image_id, left, right, n in issued:
        low, high = sorted((left, right))
        key = (study_id, image_id, low, high)
        counts[key] = counts.get(key, 0) + n
    PairIssueCount.objects.bulk_create(
        [
            PairIssueCount(
                study_id=study_id,
                source_image_id=image_id,
                condition_low_id=low,
                condition_high_id=high,
                issued=n,
            )
            for (study_id, image_id, low, high), n in sorted(counts.items())
        ],
        batch_size=1000,
    )


def forget_counts(apps, schema_editor):
    apps.get_model("studies", "PairIssueCount").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("studies", "0005_pair_issue_count"),
    ]

    operations = [
        migrations.RunPython(count_issued_pairs, forget_counts),
    ]
