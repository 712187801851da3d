// An event-stream parser, as the WHATWG HTML standard's "interpret an event
// stream" section reads text/event-stream, fed chunk by chunk, so that a
// fetch body can be read like EventSource reads it.
const LF = 10;
const CR = 13;
/**
 * SSEParser turns the text of an event stream into messages. Feed it the
 * decoded text with push, in chunks of any size (a line, or a CRLF, may be
 * split between two chunks); it calls onMessage for each complete message.
 * An incomplete message at the end of the stream is dropped, as the
 * standard says. It is not safe for concurrent use; one parser reads one
 * stream.
 */
export class SSEParser {
    /** The stream's last event id ("" before any id: line). */
    lastEventId = "";
    /** The reconnection time the stream asked for (retry:), in ms. */
    retry;
    #onMessage;
    #line = ""; // the current line, up to the end of the last chunk
    #afterCR = false; // the last chunk ended with CR: a leading LF belongs to it
    #started = false; // the first character (a BOM, maybe) was looked at
    #data = "";
    #hasData = false;
    #event = "";
    constructor(onMessage) {
        this.#onMessage = onMessage;
    }
    /** Reads the next chunk of the stream. */
    push(chunk) {
        let s = chunk;
        if (!this.#started && s.length > 0) {
            this.#started = true;
            if (s.charCodeAt(0) === 0xfeff)
                s = s.slice(1);
        }
        let start = 0;
        for (let i = 0; i < s.length; i++) {
            const c = s.charCodeAt(i);
            if (this.#afterCR) {
                this.#afterCR = false;
                if (c === LF) {
                    start = i + 1;
                    continue;
                }
            }
            if (c !== LF && c !== CR)
                continue;
            const line = this.#line + s.slice(start, i);
            this.#line = "";
            start = i + 1;
            this.#afterCR = c === CR;
            this.#processLine(line);
        }
        this.#line += s.slice(start);
    }
    #processLine(line) {
        if (line === "") {
            this.#dispatch();
            return;
        }
        if (line.charCodeAt(0) === 0x3a /* : */)
            return; // a comment, such as ": ping"
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.charCodeAt(0) === 0x20)
            value = value.slice(1);
        switch (field) {
            case "data":
                this.#data += value + "\n";
                this.#hasData = true;
                break;
            case "event":
                this.#event = value;
                break;
            case "id":
                if (!value.includes("\0"))
                    this.lastEventId = value;
                break;
            case "retry":
                if (/^[0-9]+$/.test(value))
                    this.retry = Number(value);
                break;
            // Any other field is ignored.
        }
    }
    #dispatch() {
        const data = this.#data.slice(0, -1);
        const event = this.#event || "message";
        const had = this.#hasData;
        this.#data = "";
        this.#hasData = false;
        this.#event = "";
        if (had)
            this.#onMessage({ data, id: this.lastEventId, event });
    }
}
