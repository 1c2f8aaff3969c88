import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Closes connections that hold a place without sending a request. A new connection must deliver its
/// request head within `headTimeout` or it gets a 408 and is closed: a slow-loris client trickling
/// header bytes keeps an idle timer alive forever, a deadline it cannot stretch. Between requests of a
/// keep-alive connection the next head must come within `keepAliveTimeout`, else the connection is
/// closed without a response (a 408 there could be read as the answer to a request sent just then).
final class RequestHeadDeadline: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let headTimeout: TimeAmount
    private let keepAliveTimeout: TimeAmount
    private var timer: Scheduled<Void>?
    private var answered = 0

    init(headTimeout: TimeAmount, keepAliveTimeout: TimeAmount) {
        self.headTimeout = headTimeout
        self.keepAliveTimeout = keepAliveTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) { disarm() }

    func channelInactive(context: ChannelHandlerContext) {
        disarm()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) { disarm() }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            answered += 1
            arm(context)
        }
        context.write(data, promise: promise)
    }

    private func arm(_ context: ChannelHandlerContext) {
        disarm()
        let fresh = answered == 0
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: fresh ? headTimeout : keepAliveTimeout) {
            let context = loopBound.value
            guard context.channel.isActive else { return }
            if fresh {
                let head = HTTPResponse(status: .requestTimeout, headerFields: [.connection: "close", .contentLength: "0"])
                context.write(NIOAny(HTTPResponsePart.head(head)), promise: nil)
                context.writeAndFlush(NIOAny(HTTPResponsePart.end(nil)), promise: nil)
            }
            context.close(promise: nil)
        }
    }

    private func disarm() {
        timer?.cancel()
        timer = nil
    }
}
