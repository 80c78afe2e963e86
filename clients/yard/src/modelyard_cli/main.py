"""yard, the Modelyard command line: `app` is the console script's entry point.

Wiring only: the global options go on the root context, and every command is attached here.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer
from pydantic import ValidationError

from modelyard_cli.commands import (
    audit_views,
    control,
    dataset_labels,
    dataset_lifecycle,
    dataset_review,
    dataset_upload,
    datasets,
    deploy,
    edge,
    edge_agent,
    job_logs,
    jobs,
    model_download,
    models,
    reads,
    token,
    trainers,
    usage,
    watch,
)
from modelyard_cli.commands.audit import audit_app
from modelyard_cli.commands.audit_as_of import as_of as audit_as_of
from modelyard_cli.commands.audit_replay import replay as audit_replay
from modelyard_cli.commands.options import JsonFlag
from modelyard_cli.connection import (
    DATASET_TARGET_ENV,
    DEFAULT_DATASET_TARGET,
    DEFAULT_DEPLOY_TARGET,
    DEFAULT_REGISTRY_TARGET,
    DEFAULT_TARGET,
    DEPLOY_TARGET_ENV,
    ORG_ENV,
    REGISTRY_TARGET_ENV,
    SECRET_ENV,
    SUBJECT_ENV,
    TARGET_ENV,
    TOKEN_ENV,
    ConnectionOptions,
)
from modelyard_cli.invocation import CliState
from modelyard_cli.output import fail
from modelyard_grpc import TlsSettings

app = typer.Typer(
    name="yard",
    help="Modelyard's command line: datasets (dataset-svc), training jobs and trainers (job-svc), model "
    "versions (registry-svc), edge servers and rollouts (deploy-svc), over gRPC.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals would print the bearer token
)
jobs_app = typer.Typer(help="Submit, list, inspect, watch and steer training jobs.", no_args_is_help=True)
trainers_app = typer.Typer(help="The trainer fleet (`yard trainers` lists it).")
datasets_app = typer.Typer(
    help="Create datasets, upload, label and review samples, publish versions.", no_args_is_help=True
)
models_app = typer.Typer(
    help="Model versions: list, inspect, evaluate, approve, release, roll back, download and verify.",
    no_args_is_help=True,
)
edge_app = typer.Typer(
    help="Edge servers: running and intended versions, drift, heartbeats, history.", no_args_is_help=True
)
deploy_app = typer.Typer(
    help="Roll released versions out to edge servers in waves; follow, cancel, retry, roll back.",
    no_args_is_help=True,
)
fleet_app = typer.Typer(help="The fleet at a glance (the mobile app's status).", no_args_is_help=True)
token_app = typer.Typer(help="Bearer tokens (a dev and ops helper).", no_args_is_help=True)


@app.callback()
def main(
    ctx: typer.Context,
    target: Annotated[
        str, typer.Option(envvar=TARGET_ENV, help="job-svc's gRPC address, host:port.")
    ] = DEFAULT_TARGET,
    bearer: Annotated[
        str | None,
        typer.Option(
            "--token", envvar=TOKEN_ENV, help="Bearer token (prefer the env var).", show_default=False
        ),
    ] = None,
    as_subject: Annotated[
        str | None,
        typer.Option(envvar=SUBJECT_ENV, help=f"Dev token's subject (with {SECRET_ENV}; default $USER)."),
    ] = None,
    org: Annotated[
        str | None, typer.Option(envvar=ORG_ENV, help=f"Dev token's organization (with {SECRET_ENV}).")
    ] = None,
    dataset_target: Annotated[
        str, typer.Option(envvar=DATASET_TARGET_ENV, help="dataset-svc's gRPC address, host:port.")
    ] = DEFAULT_DATASET_TARGET,
    registry_target: Annotated[
        str, typer.Option(envvar=REGISTRY_TARGET_ENV, help="registry-svc's gRPC address, host:port.")
    ] = DEFAULT_REGISTRY_TARGET,
    deploy_target: Annotated[
        str, typer.Option(envvar=DEPLOY_TARGET_ENV, help="deploy-svc's gRPC address, host:port.")
    ] = DEFAULT_DEPLOY_TARGET,
    as_json: JsonFlag = False,
) -> None:
    """Connect to job-svc at --target, dataset-svc at --dataset-target, registry-svc at
    --registry-target and deploy-svc at --deploy-target with --token; on a dev stack,
    MODELYARD_TOKEN_SIGNING_KEY (the token issuer's key) mints one."""
    try:
        tls = TlsSettings()  # MODELYARD_TLS_CA_FILE and friends: see modelyard_cli.connection
    except ValidationError as error:
        fail(*(f"error: {problem['msg'].removeprefix('Value error, ')}" for problem in error.errors()))
    connection = ConnectionOptions(
        target, bearer, os.environ.get(SECRET_ENV), as_subject, org, dataset_target=dataset_target, tls=tls,
        registry_target=registry_target, deploy_target=deploy_target,
    )  # fmt: skip
    ctx.obj = CliState(connection, as_json)


jobs_app.command("submit")(jobs.submit)
jobs_app.command("list")(jobs.list_jobs)
jobs_app.command("active")(jobs.active)
jobs_app.command("show")(reads.show)
jobs_app.command("watch")(watch.watch)
jobs_app.command("logs")(job_logs.logs)
jobs_app.command("queue")(reads.queue)
jobs_app.command("cancel")(control.cancel)
jobs_app.command("pause")(control.pause)
jobs_app.command("resume")(control.resume)
jobs_app.command("retry")(control.retry)
jobs_app.command("priority")(control.priority)
trainers_app.callback(invoke_without_command=True)(trainers.trainers_overview)
trainers_app.command("list")(trainers.list_trainers)
token_app.command("mint")(token.mint)
datasets_app.command("create")(datasets.create)
datasets_app.command("list")(datasets.list_datasets)
datasets_app.command("show")(datasets.show)
datasets_app.command("upload")(dataset_upload.upload)
datasets_app.command("label")(dataset_labels.label)
datasets_app.command("review")(dataset_review.review)
datasets_app.command("publish")(datasets.publish)
datasets_app.command("readiness")(datasets.readiness)
datasets_app.command("describe")(dataset_lifecycle.describe)
datasets_app.command("archive")(dataset_lifecycle.archive)
datasets_app.command("unarchive")(dataset_lifecycle.unarchive)
datasets_app.command("delete")(dataset_lifecycle.delete)
datasets_app.command("delete-sample")(dataset_lifecycle.delete_sample)
models_app.command("list")(models.list_versions)
models_app.command("show")(models.show)
models_app.command("evaluate")(models.evaluate)
models_app.command("approve")(models.approve)
models_app.command("reject")(models.reject)
models_app.command("release")(models.release)
models_app.command("deprecate")(models.deprecate)
models_app.command("rollback")(models.rollback)
models_app.command("renumber")(models.renumber)
models_app.command("download")(model_download.download)
models_app.command("verify")(model_download.verify)
edge_app.command("list")(edge.list_servers)
edge_app.command("show")(edge.show)
fleet_app.command("status")(edge.fleet_status)
deploy_app.command("start")(deploy.start)
deploy_app.command("status")(deploy.status)
deploy_app.command("list")(deploy.list_rollouts)
deploy_app.command("cancel")(deploy.cancel)
deploy_app.command("retry")(deploy.retry)
deploy_app.command("rollback")(deploy.rollback)
deploy_app.command("deployments")(deploy.deployments)
app.command(
    "edge-agent",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
)(edge_agent.edge_agent)

app.add_typer(jobs_app, name="jobs")
app.add_typer(trainers_app, name="trainers")
app.add_typer(datasets_app, name="datasets")
app.add_typer(models_app, name="models")
app.add_typer(edge_app, name="edge")
app.add_typer(deploy_app, name="deploy")
app.add_typer(fleet_app, name="fleet")
app.add_typer(token_app, name="token")
audit_views.register(audit_app, app)  # yard audit events / trail, yard lineage
audit_app.command("replay")(audit_replay)
audit_app.command("as-of")(audit_as_of)
app.add_typer(audit_app, name="audit")
app.command("usage")(usage.usage)
