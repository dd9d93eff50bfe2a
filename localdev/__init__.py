"""Local stand-ins for the external systems vedomains talks to.

`dns_server` is a real DNS server on loopback that tests and the local run command
program with records and faults; `dns_control` is the client for its HTTP control
API; `moto_server` starts moto in server mode as the local AWS endpoint.
Nothing here is imported by the app at run time.
"""
