"""The ve.ai contract: plans as data (any plan name from the main app, and a
per-workspace domain limit set by the sync, item 3) and one ordering field per synced
resource (item 8)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("domains", "0010_merge_0005_cdn_tenants_0009_event_kinds_union_veai")]

    operations = [
        migrations.AlterField(
            model_name="workspace",
            name="plan",
            field=models.CharField(default="free", max_length=20),
        ),
        migrations.AddField(
            model_name="workspace",
            name="domain_limit_override",
            field=models.PositiveIntegerField(
                blank=True, null=True,
                help_text="Set by the main app's sync: this workspace's domain limit, whatever "
                "the plan's default (VEDOMAINS_PLAN_LIMITS). Empty: the default."),
        ),
        migrations.AddField(
            model_name="externalworkspace",
            name="version_field",
            field=models.CharField(blank=True, default="", max_length=10),
        ),
        migrations.AddField(
            model_name="externalmembership",
            name="version_field",
            field=models.CharField(blank=True, default="", max_length=10),
        ),
    ]
