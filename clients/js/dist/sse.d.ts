/** One dispatched message of an event stream. */
export interface SSEMessage {
    /** The data lines joined with "\n". */
    data: string;
    /** The last event id seen so far in the stream ("" before any). */
    id: string;
    /** The event type: "message" unless an event: line named another. */
    event: string;
}
/**
 * SSEParser turns the text of an event stream into messages. Feed it the
 * decoded text with push, in chunks of any size (a line, or a CRLF, may be
 * split between two chunks); it calls onMessage for each complete message.
 * An incomplete message at the end of the stream is dropped, as the
 * standard says. It is not safe for concurrent use; one parser reads one
 * stream.
 */
export declare class SSEParser {
    #private;
    /** The stream's last event id ("" before any id: line). */
    lastEventId: string;
    /** The reconnection time the stream asked for (retry:), in ms. */
    retry: number | undefined;
    constructor(onMessage: (m: SSEMessage) => void);
    /** Reads the next chunk of the stream. */
    push(chunk: string): void;
}
