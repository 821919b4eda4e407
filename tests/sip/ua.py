#!/usr/bin/env python3
"""A real SIP phone for Dialtone's end-to-end tests: pjproject's SIP stack (pjsua2, from
PyPI's pjsua2-python) driven by one command per line on stdin, answering one JSON object
per line on stdout.

    python3 ua.py --proxy 127.0.0.1:5060 --user-agent "Test Phone"

Commands:
    register EXT DOMAIN SECRET [AUTHUSER]
                                 register (or re-register), authenticating as AUTHUSER
                                 (default EXT), and report the final status:
                                 {"event": "registration", "code": 200}
    unregister                   {"event": "registration", "code": ...}
    call EXT                     call EXT at the phone's own domain; reports
                                 {"event": "call", "state": "confirmed"} once answered and
                                 {"event": "call", "state": "ended", "code": N} at the end
    hangup                       ends the current call
    quit

Incoming calls are answered at once ({"event": "incoming"}). Only 127.0.0.1 is used; no
audio device is opened.
"""

import argparse
import json
import select
import sys

import pjsua2 as pj


def say(**fields):
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


class Call(pj.Call):
    def __init__(self, account, call_id=pj.PJSUA_INVALID_ID):
        super().__init__(account, call_id)
        self.account = account

    def onCallState(self, prm):
        info = self.getInfo()
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED:
            say(event="call", state="confirmed", remote=info.remoteUri)
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            say(event="call", state="ended", code=info.lastStatusCode)
            self.account.calls = [c for c in self.account.calls if c is not self]


class Account(pj.Account):
    def __init__(self):
        super().__init__()
        self.calls = []
        self.waiting_registration = False

    def onRegState(self, prm):
        say(event="reg-state", code=prm.code, reason=prm.reason, expiration=prm.expiration)
        # Provisional answers and challenges are not final.
        if prm.code >= 200 and prm.code != 401 and prm.code != 407:
            if self.waiting_registration:
                self.waiting_registration = False
                say(event="registration", code=prm.code, reason=prm.reason)

    def onIncomingCall(self, prm):
        call = Call(self, prm.callId)
        self.calls.append(call)
        say(event="incoming")
        op = pj.CallOpParam()
        op.statusCode = 200
        call.answer(op)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--proxy", required=True, help="Kamailio's address, host:port")
    parser.add_argument("--user-agent", default="Dialtone Test Phone")
    args = parser.parse_args()

    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.userAgent = args.user_agent
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.logConfig.level = 0
    cfg.logConfig.consoleLevel = 0
    cfg.medConfig.noVad = True
    ep.libInit(cfg)
    transport = pj.TransportConfig()
    transport.port = 0
    transport.boundAddress = "127.0.0.1"
    transport.publicAddress = "127.0.0.1"
    ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
    ep.libStart()
    ep.audDevManager().setNullDev()

    account = None
    retired = []
    domain = None
    say(event="ready")
    while True:
        ep.libHandleEvents(20)
        ready, _, _ = select.select([sys.stdin], [], [], 0.01)
        if not ready:
            continue
        line = sys.stdin.readline()
        if not line:
            break
        words = line.split()
        if not words:
            continue
        command = words[0]
        try:
            if command == "register" and len(words) in (4, 5):
                ext, domain, secret = words[1], words[2], words[3]
                # An authentication username other than the extension (the softphone's
                # EXPIRY:EXT@DOMAIN credential).
                auth_user = words[4] if len(words) == 5 else ext
                acfg = pj.AccountConfig()
                acfg.idUri = "sip:%s@%s" % (ext, domain)
                acfg.regConfig.registrarUri = "sip:%s" % args.proxy
                acfg.regConfig.timeoutSec = 300
                acfg.regConfig.retryIntervalSec = 0
                acfg.regConfig.firstRetryIntervalSec = 0
                acfg.sipConfig.proxies.append("sip:%s;lr" % args.proxy)
                acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", auth_user, 0, secret))
                acfg.natConfig.contactRewriteUse = 0
                acfg.natConfig.viaRewriteUse = 0
                acfg.natConfig.sdpNatRewriteUse = 0
                acfg.mediaConfig.transportConfig.port = 0
                acfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
                if account is not None:
                    # Reprogrammed: the old account goes (kept referenced until the end,
                    # as pjsua2 may still call it) and a new one registers.
                    account.shutdown()
                    retired.append(account)
                account = Account()
                account.waiting_registration = True
                account.create(acfg)
            elif command == "unregister" and account is not None:
                account.waiting_registration = True
                account.setRegistration(False)
            elif command == "call" and len(words) == 2 and account is not None:
                call = Call(account)
                account.calls.append(call)
                op = pj.CallOpParam(True)
                call.makeCall("sip:%s@%s" % (words[1], domain), op)
            elif command == "hangup" and account is not None:
                for call in list(account.calls):
                    call.hangup(pj.CallOpParam())
            elif command == "quit":
                break
            else:
                say(event="error", message="unknown command: %s" % command)
        except pj.Error as e:
            say(event="error", message=e.info())
    if account is not None:
        account.shutdown()
    ep.libDestroy()


if __name__ == "__main__":
    main()
