"""A real OpenAI-compatible chat-completions server on 127.0.0.1 whose answers the test scripts.

Loaded as a pytest plugin by conftest.py, so every test module can use the `serve` fixture:

    srv = serve(('ok', 'answer'), (500,), ('sleep', 1.5), ('ok', 'final', 'its reasoning'), lambda body: ('ok', '...'))

Each request takes the next step of the script (the last one repeats):
- `('ok', text)` answers `text`; `('ok', text, reasoning)` also sends DeepSeek-R1's `reasoning_content`;
- `(status,)` answers that HTTP status with an error body (429 and 5xx are retried by the client);
  `(status, message)` gives the error body that message;
- `('sleep', seconds)` answers 'late' after `seconds` (longer than the client's timeout: a timeout);
- a callable gets the request's JSON body and returns one of the steps above (answers that depend on the prompt).
`srv.requests` lists every request received: {'path', 'auth', 'body'}.
"""
import json, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import pytest


class FakeOpenAI(ThreadingHTTPServer):
    "A chat-completions server whose answers follow `script` (see the module's docstring)."
    daemon_threads = True

    def __init__(self, script):
        super().__init__(('127.0.0.1', 0), Handler)
        self.script, self.requests, self.lock = list(script), [], threading.Lock()

    def next_step(self, body: dict):
        "The next scripted behaviour for a request with `body`; the last one repeats."
        with self.lock: step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        return step(body) if callable(step) else step

    def handle_error(self, request, client_address): pass

    @property
    def url(self): return f'http://127.0.0.1:{self.server_address[1]}/v1'


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args): pass

    def send_json(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.send_header('retry-after-ms', '10')
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers['Content-Length'])))
        self.server.requests.append({'path': self.path, 'auth': self.headers.get('Authorization'), 'body': body})
        step = self.server.next_step(body)
        if step[0] == 'sleep':
            time.sleep(step[1])
            step = ('ok', 'late')
        if step[0] != 'ok':
            message = step[1] if len(step) > 1 else f'scripted {step[0]}'
            return self.send_json(step[0], {'error': {'message': message, 'type': 'server_error'}})
        message = {'role': 'assistant', 'content': step[1]}
        if len(step) > 2: message['reasoning_content'] = step[2]
        self.send_json(200, {'id': 'c1', 'object': 'chat.completion', 'created': 0, 'model': body['model'],
                             'choices': [{'index': 0, 'finish_reason': 'stop', 'message': message}],
                             'usage': {'prompt_tokens': 11, 'completion_tokens': 3, 'total_tokens': 14}})


def stop(srv):
    "Stop `srv` and close its socket."
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def serve():
    "Start scripted servers in threads; all are stopped at the end of the test."
    servers = []
    def start(*script):
        srv = FakeOpenAI(script)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return srv
    yield start
    for srv in servers: stop(srv)
