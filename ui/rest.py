"""REST API beside the UI: submit, status, result, cancel, built on `tasks.client`.

    POST /api/v1/tasks/submit/          multipart (files named after the inputs) or JSON (base64 images)
    GET  /api/v1/tasks/{id}/status/     ?wait=N: a long poll, answered as soon as the job ends (N <= 60 s)
    GET  /api/v1/tasks/{id}/result/     the image, PNG or JPEG (?index=N), or ?format=base64 for JSON
    POST /api/v1/tasks/{id}/cancel/
    POST /api/v1/batches/               JSON: one operation, shared params, a list of items (images, params)
    GET  /api/v1/batches/{id}/status/   every job's status, and the batch's counts and percent
    POST /api/v1/batches/{id}/cancel/   cancels every job that has not ended
    GET  /api/v1/operations/            every operation, its inputs, engines and parameter schema

Optional auth (checked by `ui.guard`): an API token (STUDIO_API_TOKEN(S)) as a bearer token, or the UI's
login (STUDIO_AUTH) as HTTP Basic.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
from dataclasses import asdict
from typing import Any, Iterator, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import UploadFile
from starlette.routing import Route

from pipelines.catalogue import OPERATIONS
from pipelines.errors import InvalidInput, StudioError
from pipelines.imaging import media_type
from tasks.client import BatchStatus, Busy, JobNotFinished, JobNotFound, JobStatus, QueueUnavailable, StudioClient
from ui.credentials import Credentials
from ui.guard import BodyTooLarge, visitor_address
from ui.intake import intake

PREFIX = "/api/v1"
INPUT_NAMES = sorted({name for op in OPERATIONS.values() for name in op.all_inputs})


class SubmitJSON(BaseModel):
    operation: str = Field(description="One of the names listed by GET /api/v1/operations/.",
                           json_schema_extra={"enum": list(OPERATIONS)})
    params: dict[str, Any] = Field(default_factory=dict, description="The operation's parameters.")
    images: dict[str, str] = Field(description="Input images by input name, base64 (a data: URL is fine).")
    callback_url: str | None = Field(None, description="POSTed the final status when the job ends.")


class BatchItem(BaseModel):
    images: dict[str, str] = Field(default_factory=dict, description="This item's input images, base64.")
    params: dict[str, Any] = Field(default_factory=dict, description="Parameters of this item (over the shared).")


class BatchJSON(BaseModel):
    operation: str = Field(description="One of the names listed by GET /api/v1/operations/.",
                           json_schema_extra={"enum": list(OPERATIONS)})
    params: dict[str, Any] = Field(default_factory=dict, description="Parameters every item shares.")
    images: dict[str, str] = Field(default_factory=dict, description="Images every item shares (a face swap's "
                                                                     "source), base64.")
    items: list[BatchItem] = Field(description="One job per item, queued together.")
    callback_url: str | None = Field(None, description="POSTed each job's final status when it ends.")


class BatchSubmitted(BaseModel):
    id: str
    jobs: list[str] = Field(description="The items' job ids, in order (each has the /tasks/ routes).")
    status_url: str


class Submitted(BaseModel):
    id: str
    state: str
    status_url: str
    result_url: str


class Status(BaseModel):
    id: str
    operation: str
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    percent: float
    stage: str
    queue: str
    position: int | None = Field(None, description="1 = next to start; only while queued.")
    eta_seconds: float | None = None
    engine: str | None = None
    detail: str | None = Field(None, description="What else ran, e.g. the style or the seed.")
    error: str | None = None
    notes: list[str] = []
    outputs: int = 0
    run_seconds: float | None = None
    batch: str | None = Field(None, description="The batch it belongs to.")


class BatchState(BaseModel):
    id: str
    done: bool = Field(description="Every job has ended.")
    percent: float
    counts: dict[str, int] = Field(description="How many jobs are in each state.")
    jobs: list[Status]


class Base64Result(BaseModel):
    id: str
    engine: str | None
    images: list[str] = Field(description="The images (PNG, or JPEG for an opaque result of a JPEG photo), base64.")


class Problem(BaseModel):
    detail: str | list[Any] = Field(description="What is wrong (a list for malformed query parameters).")


class OperationInfo(BaseModel):
    name: str
    title: str
    inputs: list[str]
    optional_inputs: list[str]
    engines: dict[str, str]
    params_schema: dict[str, Any]


ERRORS = {401: {"model": Problem}, 404: {"model": Problem}, 409: {"model": Problem}, 413: {"model": Problem},
          422: {"model": Problem}, 429: {"model": Problem}, 503: {"model": Problem}}

SUBMIT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": {
                "type": "object",
                "required": ["operation"],
                "properties": {
                    "operation": {"type": "string", "enum": list(OPERATIONS)},
                    "params": {"type": "string", "description": "The parameters as a JSON object."},
                    "callback_url": {"type": "string"},
                    **{name: {"type": "string", "format": "binary"} for name in INPUT_NAMES},
                },
            }},
            "application/json": {"schema": {"$ref": "#/components/schemas/SubmitJSON"}},
        },
    }
}


def build_api(client: StudioClient, credentials: Credentials | None = None) -> APIRouter:
    """The API's routes. The Guard in front of them checks `credentials`; here they tell
    whose fair share a job counts against."""
    credentials = credentials or Credentials()
    long_polls = LongPolls()
    router = APIRouter(prefix=PREFIX, responses=ERRORS)

    @router.post("/tasks/submit/", status_code=202, response_model=Submitted, openapi_extra=SUBMIT_BODY,
                 summary="Submit a job")
    async def submit(request: Request) -> Submitted:
        operation, params, images, callback_url = await _read_submission(request)
        # decoding the images and resolving the callback's host take a while: not on the event loop
        job_id = await intake(_call, client.submit, operation, images, params, callback_url,
                              _owner(request, credentials))
        base = f"{str(request.base_url).rstrip('/')}{PREFIX}/tasks/{job_id}"
        return Submitted(id=job_id, state="queued", status_url=f"{base}/status/", result_url=f"{base}/result/")

    @router.get("/tasks/{job_id}/status/", response_model=Status, summary="A job's state and progress")
    async def status(request: Request, job_id: str, wait: float = Query(0, ge=0, le=60, description=(
            "Long poll: answer as soon as the job ends, or after this many seconds (instead of polling)."))
    ) -> Status:
        if wait:
            with long_polls.slot(_owner(request, credentials)):
                await _waited(client.wait_async(job_id, wait))
        return _status(await asyncio.to_thread(_call, client.status, job_id))

    @router.get("/tasks/{job_id}/result/", summary="A finished job's image",
                responses={200: {"content": {"image/png": {}, "image/jpeg": {}, "application/json": {
                    "schema": {"$ref": "#/components/schemas/Base64Result"}}}}})
    def result(job_id: str, index: int = Query(0, ge=0, le=1000),
               format: Literal["png", "base64"] = Query("png")) -> Response:
        images = _call(client.results, job_id)
        if format == "base64":
            engine = _call(client.status, job_id).engine
            body = Base64Result(id=job_id, engine=engine, images=[base64.b64encode(i).decode() for i in images])
            return JSONResponse(body.model_dump())
        if index >= len(images):
            raise HTTPException(404, f"Job {job_id} has {len(images)} image(s); index {index} does not exist.")
        return Response(images[index], media_type=media_type(images[index]))

    @router.post("/tasks/{job_id}/cancel/", response_model=Status, summary="Cancel a queued or running job")
    def cancel(job_id: str) -> Status:
        before = _call(client.status, job_id)
        if before.done:
            raise HTTPException(409, f"Job {job_id} already {before.state}; there is nothing to cancel.")
        return _status(_call(client.cancel, job_id))

    @router.post("/batches/", status_code=202, response_model=BatchSubmitted, summary="Submit a batch of jobs")
    async def submit_batch(body: BatchJSON, request: Request) -> BatchSubmitted:
        most = client.settings.max_jobs_per_owner
        if len(body.items) > most:  # before any image is decoded
            raise HTTPException(422, f"The batch has {len(body.items)} items; a batch takes at most {most}.")

        def submitted() -> tuple[str, list[str]]:
            shared = {k: _from_base64(k, v) for k, v in body.images.items()}
            items = [{**shared, **{k: _from_base64(f"items[{i}].{k}", v) for k, v in item.images.items()}}
                     for i, item in enumerate(body.items)]
            params = [{**body.params, **item.params} for item in body.items]
            return _call(client.submit_batch, body.operation, items, params, body.callback_url,
                         _owner(request, credentials))

        batch_id, job_ids = await intake(submitted)
        url = f"{str(request.base_url).rstrip('/')}{PREFIX}/batches/{batch_id}/status/"
        return BatchSubmitted(id=batch_id, jobs=job_ids, status_url=url)

    @router.get("/batches/{batch_id}/status/", response_model=BatchState, summary="A batch's jobs and progress")
    def batch_status(batch_id: str) -> BatchState:
        return _batch_state(_call(client.batch_status, batch_id))

    @router.post("/batches/{batch_id}/cancel/", response_model=BatchState, summary="Cancel a batch's open jobs")
    def cancel_batch(batch_id: str) -> BatchState:
        return _batch_state(_call(client.cancel_batch, batch_id))

    @router.get("/operations/", response_model=list[OperationInfo], summary="Operations and their parameters")
    def operations() -> list[OperationInfo]:
        return [OperationInfo(name=op.name, title=op.title, inputs=list(op.inputs),
                              optional_inputs=list(op.optional_inputs),
                              engines={"auto": "best available", **{n: e.label for n, e in op.engines.items()}},
                              params_schema=op.params.model_json_schema()) for op in OPERATIONS.values()]

    return router


class LongPolls:
    """Bounds the long polls held open, per visitor and in all (each holds one of the
    client's 100 async Redis connections): one visitor's hundred open polls get 429 past
    their share, and a full house answers 503 to the newcomer, never to everyone."""

    def __init__(self, per_visitor: int = 8, total: int = 64):
        self.per_visitor, self.total = per_visitor, total
        self.open: dict[str, int] = {}

    @contextlib.contextmanager
    def slot(self, visitor: str) -> Iterator[None]:
        if sum(self.open.values()) >= self.total:
            raise HTTPException(503, f"{self.total} long polls are open; poll without ?wait for now.",
                                headers={"Retry-After": "1"})
        if self.open.get(visitor, 0) >= self.per_visitor:
            raise HTTPException(429, f"You have {self.per_visitor} long polls open, the most one visitor may; "
                                "wait for one to answer.", headers={"Retry-After": "1"})
        self.open[visitor] = self.open.get(visitor, 0) + 1
        try:
            yield
        finally:
            self.open[visitor] -= 1
            if not self.open[visitor]:
                del self.open[visitor]


async def _read_submission(request: Request) -> tuple[str, dict, dict[str, bytes], str | None]:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        try:
            form = await request.form()
        except BodyTooLarge:
            raise  # the guard answers 413
        except Exception as exc:  # starlette raises several types for a malformed body
            raise HTTPException(422, f"Unreadable multipart body: {exc}") from None
        fields = {k: v for k, v in form.multi_items() if not isinstance(v, UploadFile)}
        images = {k: await v.read() for k, v in form.multi_items() if isinstance(v, UploadFile)}
        if "operation" not in fields:
            raise HTTPException(422, "The form needs an 'operation' field.")
        try:
            params = json.loads(fields.get("params") or "{}")
        except json.JSONDecodeError as exc:
            raise HTTPException(422, f"'params' is not valid JSON: {exc}") from None
        if not isinstance(params, dict):
            raise HTTPException(422, "'params' must be a JSON object.")
        return fields["operation"], params, images, fields.get("callback_url") or None
    if content_type.startswith("application/json"):
        try:
            body = SubmitJSON.model_validate_json(await request.body())
        except ValidationError as exc:
            problem = exc.errors()[0]
            raise HTTPException(422, f"{'.'.join(map(str, problem['loc'])) or 'body'}: {problem['msg']}") from None
        images = await intake(lambda: {k: _from_base64(k, v) for k, v in body.images.items()})
        return body.operation, body.params, images, body.callback_url
    raise HTTPException(415, "Send multipart/form-data (files) or application/json (base64 images).")


def _owner(request: Request, credentials: Credentials) -> str:
    """Whom the fair share counts a REST job against: the token (by its name), else the
    login's user, else the address."""
    token = credentials.bearer(request.headers)
    if token:
        return f"token:{token}"
    user = credentials.basic_user(request.headers)
    if user:
        return f"user:{user}"
    return f"ip:{visitor_address(request.client.host if request.client else None, request.headers)}"


def _from_base64(name: str, text: str) -> bytes:
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPException(422, f"images.{name} is not valid base64.") from None


def _unavailable(error: QueueUnavailable) -> HTTPException:
    """Redis restarting or stalled: a retry soon will likely work."""
    return HTTPException(503, str(error), headers={"Retry-After": "5"})


async def _waited(waiting: Any) -> None:
    """Await a long poll; the queue not answering is a 503, as for every call."""
    try:
        await waiting
    except QueueUnavailable as exc:
        raise _unavailable(exc) from None


def _call(method: Any, *args: Any) -> Any:
    """Run a client call, turning its errors into HTTP answers."""
    try:
        return method(*args)
    except JobNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except JobNotFinished as exc:
        raise HTTPException(409, str(exc)) from None
    except InvalidInput as exc:
        raise HTTPException(422, str(exc)) from None
    except QueueUnavailable as exc:
        raise _unavailable(exc) from None
    except Busy as exc:
        raise HTTPException(429, str(exc), headers={"Retry-After": str(round(exc.retry_after))}) from None
    except StudioError as exc:
        raise HTTPException(409, str(exc)) from None


def _status(status: JobStatus) -> Status:
    fields = asdict(status)
    fields.pop("preview_version")
    return Status(**fields)


def _batch_state(batch: BatchStatus) -> BatchState:
    counts = {state: batch.count(state) for state in ("queued", "running", "succeeded", "failed", "cancelled")}
    return BatchState(id=batch.id, done=batch.done, percent=round(batch.percent, 1), counts=counts,
                      jobs=[_status(job) for job in batch.jobs])


def schema_routes(router: APIRouter) -> list[Route]:
    """/openapi.json (the REST API alone, not the Gradio routes that share the app) and
    /docs to browse it. Routes of their own, in place of FastAPI's, so they are right
    from the server's first request."""
    schema = get_openapi(title="AI Image Studio API", version="1", routes=router.routes, description=__doc__)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (SubmitJSON, Base64Result):  # referenced by hand-written parts of the schema
        components[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")

    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(schema)

    async def docs(request: Request) -> Response:
        return get_swagger_ui_html(openapi_url="openapi.json", title="AI Image Studio API")

    return [Route("/openapi.json", openapi), Route("/docs", docs)]
