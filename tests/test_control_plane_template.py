"""deploy/control-plane.yaml agrees with the code it deploys (cfn-lint runs on it with every
other template in edge_lambda/tests/test_deploy_templates.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from django.conf import settings

from tests.cfn import load_template
from vedomains_site.observability import emf, middleware, queues

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "control-plane.yaml"


def _resources() -> dict[str, Any]:
    return load_template(TEMPLATE)["Resources"]


def _of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {name: r["Properties"] for name, r in _resources().items() if r["Type"] == kind}


def _container(task: dict[str, Any]) -> dict[str, Any]:
    (container,) = task["ContainerDefinitions"]
    return container


def test_alb_health_checks_the_readiness_path_and_hides_operator_paths() -> None:
    (group,) = _of_type("AWS::ElasticLoadBalancingV2::TargetGroup").values()
    assert group["HealthCheckPath"] == middleware.READY_PATH
    assert group["Port"] == 8000 and group["TargetType"] == "ip"
    (rule,) = _of_type("AWS::ElasticLoadBalancingV2::ListenerRule").values()
    hidden = rule["Conditions"][0]["PathPatternConfig"]["Values"]
    assert middleware.METRICS_PATH in hidden and "/health/*" in hidden
    assert rule["Actions"][0]["FixedResponseConfig"]["StatusCode"] == "404"


def test_one_web_service_a_worker_service_per_queue_and_exactly_one_beat() -> None:
    tasks = _of_type("AWS::ECS::TaskDefinition")
    commands = {name: _container(t)["Command"] for name, t in tasks.items()}
    assert commands["WebTaskDefinition"] == ["web"]
    assert commands["BeatTaskDefinition"] == ["beat"]
    assert commands["MigrateTaskDefinition"] == ["migrate"]
    worker_queues = [c[1] for c in commands.values() if c[0] == "worker"]
    consumed = {q for qs in worker_queues for q in qs.split(",")}
    assert consumed == set(queues.names()), "every queue needs a worker service"
    assert {r["queue"] for r in settings.CELERY_TASK_ROUTES.values()} <= consumed

    services = _of_type("AWS::ECS::Service")
    used = {s["TaskDefinition"]["Ref"] for s in services.values()}
    assert "MigrateTaskDefinition" not in used, "migrations are a one-off task, not a service"
    assert used == set(tasks) - {"MigrateTaskDefinition"}
    beat = services["BeatService"]
    assert beat["DesiredCount"] == 1
    assert beat["DeploymentConfiguration"]["MaximumPercent"] == 100
    web = services["WebService"]
    assert web["LoadBalancers"][0]["ContainerPort"] == 8000
    for name, task in tasks.items():
        if commands[name][0] == "worker":
            assert _container(task)["HealthCheck"]["Command"][1:3] == ["/app/bin/run",
                                                                     "worker-health"]


def test_every_variable_the_tasks_get_is_a_documented_setting() -> None:
    documented = set(re.findall(r"^([A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    for name, task in _of_type("AWS::ECS::TaskDefinition").items():
        container = _container(task)
        names = {e["Name"] for e in container["Environment"]}
        secrets = {}
        for entry in container["Secrets"]:
            if "Fn::If" in entry:  # optional secret: [condition, value, AWS::NoValue]
                entry = entry["Fn::If"][1]
            secrets[entry["Name"]] = entry["ValueFrom"]
        assert names | set(secrets) <= documented, (name, sorted((names | set(secrets))
                                                               - documented))
        # Secrets come from Secrets Manager, never from plain environment values; the
        # database password is read at each connection (it rotates), never injected at start.
        assert {"DJANGO_SECRET_KEY", "VEDOMAINS_METRICS_TOKEN", "REDIS_PASSWORD"} <= set(
            secrets)
        assert "DATABASE_PASSWORD_SECRET_ARN" in names
        assert not (names | set(secrets)) & {"DATABASE_PASSWORD"}
        assert not names & {"DJANGO_SECRET_KEY", "DATABASE_PASSWORD", "VEDOMAINS_METRICS_TOKEN",
                            "SENTRY_DSN", "REDIS_PASSWORD"}
        assert container["LogConfiguration"]["LogDriver"] == "awslogs"


def test_workers_scale_on_the_queue_depth_beat_publishes() -> None:
    policies = _of_type("AWS::ApplicationAutoScaling::ScalingPolicy")
    assert len(policies) == 3
    scaled_queues = set()
    for policy in policies.values():
        metrics = policy["TargetTrackingScalingPolicyConfiguration"][
            "CustomizedMetricSpecification"]["Metrics"]
        depth = next(m for m in metrics if m["Id"] == "depth")["MetricStat"]["Metric"]
        assert depth["MetricName"] == emf.METRIC
        assert depth["Namespace"] == {"Ref": "MetricsNamespace"}
        (dimension,) = depth["Dimensions"]
        assert dimension["Name"] == emf.DIMENSION
        scaled_queues.add(dimension["Value"])
        assert [m["ReturnData"] for m in metrics] == [False, False, True]
    assert scaled_queues == set(queues.names())


def test_data_stores_are_private_encrypted_and_kept() -> None:
    resources = _resources()
    db = resources["Database"]
    assert db["DeletionPolicy"] == "Snapshot"
    props = db["Properties"]
    assert props["StorageEncrypted"] is True and props["PubliclyAccessible"] is False
    assert props["ManageMasterUserPassword"] is True
    redis = resources["Redis"]["Properties"]
    assert redis["TransitEncryptionEnabled"] is True and redis["AtRestEncryptionEnabled"] is True


def test_the_task_role_imports_both_app_policies_from_their_stacks() -> None:
    """saas-manager.yaml's tenant policy (UpdateDomainAssociation, the tenant calls) was
    attached to a role name the README passed by hand while the tasks ran as an auto-named
    role: on AWS the app was denied. Now the role imports both policies' exports."""
    role = _resources()["TaskRole"]["Properties"]
    imports = [p["Fn::ImportValue"]["Fn::Sub"] for p in role["ManagedPolicyArns"]]
    assert imports == ["${AppPolicyStackName}-PolicyArn",
                       "${SaasManagerStackName}-TenantPolicyArn"]
    for name, export in (("app-iam-policy.yaml", "PolicyArn"),
                         ("saas-manager.yaml", "TenantPolicyArn")):
        template = load_template(ROOT / "deploy" / name)
        assert template["Outputs"][export]["Export"]["Name"]["Fn::Sub"] == (
            "${AWS::StackName}-" + export)
        assert "AppRoleName" not in template.get("Parameters", {})
        for resource in template["Resources"].values():
            assert "Roles" not in resource.get("Properties", {}), name
    for name, task in _of_type("AWS::ECS::TaskDefinition").items():
        role_name = "MigrateTaskRole" if name == "MigrateTaskDefinition" else "TaskRole"
        assert task["TaskRoleArn"] == {"Fn::GetAtt": f"{role_name}.Arn"}


def test_services_connect_as_the_app_user_and_only_migrate_as_the_master() -> None:
    """Every task connected as the RDS master user with the password injected at start: a
    rotation broke new connections until a restart, and the app could change the schema."""
    for name, task in _of_type("AWS::ECS::TaskDefinition").items():
        env = {e["Name"]: e["Value"] for e in _container(task)["Environment"]}
        url = env["DATABASE_URL"]["Fn::Sub"]
        if name == "MigrateTaskDefinition":
            assert url.startswith("postgres://vedomains@")
            assert env["DATABASE_PASSWORD_SECRET_ARN"] == {
                "Fn::GetAtt": "Database.MasterUserSecret.SecretArn"}
            assert env["DATABASE_APP_USER_SECRET_ARN"] == {"Ref": "AppDatabaseSecret"}
        else:
            assert url.startswith("postgres://vedomains_app@"), name
            assert env["DATABASE_PASSWORD_SECRET_ARN"] == {"Ref": "AppDatabaseSecret"}, name
            assert "DATABASE_APP_USER_SECRET_ARN" not in env
    resources = _resources()
    assert resources["AppDatabaseSecretRotation"]["Properties"]["HostedRotationLambda"][
        "RotationType"] == "PostgreSQLSingleUser"
    # The services' role reads only the app user's secret; the master's only migrate's role.
    (read,) = resources["TaskRole"]["Properties"]["Policies"]
    assert read["PolicyDocument"]["Statement"][0]["Resource"] == {"Ref": "AppDatabaseSecret"}
    assert "MasterUserSecret" not in str(resources["TaskRole"])
    assert "MasterUserSecret" in str(resources["MigrateTaskRole"])


def test_the_tenant_parameter_the_distribution_declares_is_the_one_the_code_sends() -> None:
    """The template let an operator rename the workspace parameter while the code always
    sends `workspaceId`: every tenant would have been refused for a missing parameter."""
    from domains.integrations import cdn

    template = load_template(ROOT / "deploy" / "saas-manager.yaml")
    assert "WorkspaceParameterName" not in template.get("Parameters", {})
    declared = [d["Name"] for r in template["Resources"].values()
                if r["Type"] == "AWS::CloudFront::Distribution"
                for d in r["Properties"]["DistributionConfig"].get("TenantConfig", {})
                .get("ParameterDefinitions", [])]
    assert declared == [cdn.WORKSPACE_PARAMETER]
